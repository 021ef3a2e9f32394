// Fragments: the first one decides (a context remembers its translation), later ones follow it;
// those that come first are held until it arrives or they time out.
#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

Engine::Impl::FragCtx* Engine::Impl::frag_find(const FragKey& k) {
  const uint32_t h = frag_slot(k);
  for (uint32_t n = 0; n < 8; ++n) {
    FragCtx& c = frag_contexts[(h + n) & frag_index_mask];
    if (c.action != FragAction::Empty && c.key == k && static_cast<int32_t>(c.expires - now) > 0)
      return &c;
  }
  return nullptr;
}

Engine::Impl::FragCtx& Engine::Impl::frag_insert(const FragKey& k) {
  const uint32_t h = frag_slot(k);
  FragCtx* victim = &frag_contexts[h & frag_index_mask];
  for (uint32_t n = 0; n < 8; ++n) {
    FragCtx& c = frag_contexts[(h + n) & frag_index_mask];
    if (c.action == FragAction::Empty || c.key == k || static_cast<int32_t>(c.expires - now) <= 0) {
      victim = &c;
      break;
    }
    if (static_cast<int32_t>(c.expires - victim->expires) < 0) victim = &c;
  }
  *victim = FragCtx{};
  victim->key = k;
  victim->expires = now + cfg.timeouts.fragment_ms;
  return *victim;
}

// Applies a context to a non-first fragment.
Result Engine::Impl::frag_apply(const FragCtx& c, PacketBuf& pkt, Parsed& p) {
  switch (c.action) {
    case FragAction::Translate: {
      if (p.ttl <= 1) return drop(DropReason::TtlExpired);
      uint8_t* ip = p.l3;
      const uint16_t ttl_d = ttl_decrement(ip);
      store32(ip + (c.dir == Dir::Out ? 12 : 16), c.new_addr);
      store16(ip + 10, csum::apply(load16(ip + 10), csum::add(c.csum_ip, ttl_d)));
      counters.add(Event::FragmentsTranslated);
      if (c.dir == Dir::Out) {
        counters.add(Event::PacketsOutToDestination);
        counters.add(Event::BytesOutToDestination, p.ip_len);
        return Result{Verdict::ToOutside, DropReason::Count, 0};
      }
      counters.add(Event::PacketsOutToSource);
      counters.add(Event::BytesOutToSource, p.ip_len);
      return Result{Verdict::ToInside, DropReason::Count, 0};
    }
    case FragAction::ToHost:  // e.g. a large ping to our public address: the kernel reassembles
      counters.add(Event::PacketsToHost);
      return Result{Verdict::ToHost, DropReason::Count, 0};
    case FragAction::Handoff:
      pkt.meta.frag_sport = c.sport;
      pkt.meta.frag_dport = c.dport;
      pkt.meta.frag_ports_valid = true;
      return handoff(c.worker);
    default:
      return drop(DropReason::FragNoFirst);
  }
}

// A first fragment was processed with result r: remember what to do with the rest and release
// any that arrived early.
void Engine::Impl::frag_learn(const Parsed& p, Dir dir, const Result& r, uint32_t flow) {
  FragCtx& c = frag_insert(frag_key(p));
  c.dir = dir;
  c.sport = p.sport;
  c.dport = p.dport;
  if (r.verdict == Verdict::Handoff) {
    c.action = FragAction::Handoff;
    c.worker = r.worker;
  } else if (flow != kNone && (r.verdict == Verdict::ToOutside || r.verdict == Verdict::ToInside)) {
    const Flow& f = pool[flow];
    c.action = FragAction::Translate;
    c.new_addr = dir == Dir::Out ? f.outside_ip : f.inside_ip;
    c.csum_ip = dir == Dir::Out ? address_delta(f) : csum::negate(address_delta(f));
  } else if (r.verdict == Verdict::ToHost) {
    c.action = FragAction::ToHost;
  } else {
    c.action = FragAction::Drop;
  }
  for (uint32_t h = 0; h < held_fragments.size() && held_fragment_count > 0; ++h) {
    Held& e = held_fragments[h];
    if (e.pkt == nullptr || !(e.key == c.key)) continue;
    Parsed hp;
    parse(*e.pkt, hp);
    Result hr = frag_apply(c, *e.pkt, hp);
    released.push(Released{e.pkt, hr});
    e.pkt = nullptr;
    --held_fragment_count;
  }
}

Result Engine::Impl::fragment(PacketBuf& pkt, Parsed& p, Dir dir) {
  if (p.proto != kProtoTcp && p.proto != kProtoUdp && p.proto != kProtoIcmp) {
    return drop(DropReason::UnsupportedProtocol);
  }
  const bool out = dir == Dir::Out;
  if (p.first_fragment) {
    last_flow = kNone;
    Result r = out ? slow_out(pkt, p, kNone) : slow_in(pkt, p, kNone);
    const bool translated = r.verdict == Verdict::ToOutside || r.verdict == Verdict::ToInside;
    const uint32_t flow = translated ? last_flow : kNone;
    frag_learn(p, dir, r, flow);
    return r;
  }
  if (pkt.meta.frag_ports_valid) {  // handed off to us by the worker that saw the first fragment
    pkt.meta.frag_ports_valid = false;
    const FlowKey k{p.src,
                    p.dst,
                    pkt.meta.frag_sport,
                    pkt.meta.frag_dport,
                    p.proto,
                    static_cast<uint8_t>(out ? kKeyInside : kKeyOutside),
                    0};
    const uint32_t i = find(k);
    if (i == kNone) return drop(DropReason::FragNoFirst);
    if (p.ttl <= 1) return drop(DropReason::TtlExpired);
    Flow& f = pool[i];
    rewrite(f, p, out);
    account_forward(i, f, p, out);
    counters.add(Event::FragmentsTranslated);
    return Result{out ? Verdict::ToOutside : Verdict::ToInside, DropReason::Count, 0};
  }
  if (const FragCtx* c = frag_find(frag_key(p))) return frag_apply(*c, pkt, p);
  // Arrived before its first fragment: hold it a while.
  // Released packets not yet popped are still ours and share the release ring (frag_hold
  // entries): counting them keeps the ring from overrunning within one burst.
  if (held_fragment_count + released.size() >= held_fragments.size())
    return drop(DropReason::FragBufferFull);
  for (Held& e : held_fragments) {
    if (e.pkt == nullptr) {
      e = Held{&pkt, frag_key(p), now};
      ++held_fragment_count;
      break;
    }
  }
  counters.add(Event::FragmentsHeld);
  return Result{Verdict::Held, DropReason::Count, 0};
}

}  // namespace eipgate::engine
