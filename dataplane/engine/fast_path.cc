// The staged fast path over a burst: parse, classify, hash and prefetch, bulk lookup, precomputed
// rewrite; a packet that needs judgement leaves for in2out.cc / out2in.cc / fragments.cc.
#include "dataplane/engine/engine_impl.h"

namespace eipgate::engine {

// looked_up: the fast path already searched this packet's key and found nothing.
inline Result Engine::Impl::process_one(PacketBuf& pkt, Parsed& p, L3Kind kind, uint32_t i,
                                        bool looked_up) {
  if (kind == L3Kind::Arp) {
    counters.add(Event::PacketsToHost);
    return Result{Verdict::ToHost, DropReason::Count, 0};
  }
  if (kind == L3Kind::Drop) return drop(p.reason);
  if (cfg.verify_ip_checksum && csum::fold(csum::partial(p.l3, p.ihl)) != 0xffff) {
    return drop(DropReason::IpBadChecksum);
  }
  const Dir dir = classify(p);
  switch (dir) {
    case Dir::Host:
      counters.add(Event::PacketsToHost);
      return Result{Verdict::ToHost, DropReason::Count, 0};
    case Dir::NotNat:
      return drop(DropReason::NotForNat);
    case Dir::Out:
      counters.add(Event::PacketsInFromSource);
      counters.add(Event::BytesInFromSource, p.ip_len);
      break;
    case Dir::In:
      counters.add(Event::PacketsInFromDestination);
      counters.add(Event::BytesInFromDestination, p.ip_len);
      break;
  }
  if (p.fragment) return fragment(pkt, p, dir);
  return dir == Dir::Out ? slow_out(pkt, p, i, looked_up) : slow_in(pkt, p, i, looked_up);
}

void Engine::Impl::process(PacketBuf* const* pkts, uint32_t n, Result* out) {
  // Stage 1: parse, classify, hash, prefetch the bucket.
  for (uint32_t k = 0; k < n; ++k) {
    l3_kinds[k] = parse(*pkts[k], parsed[k]);
    fast_dir[k] = 0;
    const Parsed& p = parsed[k];
    if (l3_kinds[k] != L3Kind::Ipv4 || p.fragment || p.l4 == nullptr || cfg.verify_ip_checksum)
      continue;
    if (p.proto == kProtoIcmp && p.icmp != IcmpKind::EchoRequest && p.icmp != IcmpKind::EchoReply)
      continue;
    if (is_outside(p.dst)) {
      if (p.icmp == IcmpKind::EchoRequest) continue;
      fast_dir[k] = 2;
      keys[k] = FlowKey{p.src, p.dst, p.sport, p.dport, p.proto, kKeyOutside, 0};
    } else if (is_inside(p.src) && !is_inside(p.dst) && !is_host(p.dst)) {
      if (p.icmp == IcmpKind::EchoReply) continue;
      fast_dir[k] = 1;
      keys[k] = FlowKey{p.src, p.dst, p.sport, p.dport, p.proto, kKeyInside, 0};
    } else {
      continue;
    }
    hashes[k] = hash_key(keys[k]);
    index.prefetch(hashes[k]);
  }
  // Stage 2: first tag match in the bucket; prefetch the flow record.
  for (uint32_t k = 0; k < n; ++k) {
    candidate[k] = kNone;
    if (!fast_dir[k]) continue;
    const uint32_t v = index.find(hashes[k], [](uint32_t) { return true; });
    if (v != kNone) {
      candidate[k] = v;
      pool.prefetch(v >> 2);
    }
  }
  // Stage 3: verify and rewrite; everything else goes to the slow path.
  const uint64_t created0 = counters.get(Event::FlowsCreated);
  burst_created = {};
  for (uint32_t k = 0; k < n; ++k) {
    Parsed& p = parsed[k];
    PacketBuf& pkt = *pkts[k];
    if (fast_dir[k]) {
      const bool is_out = fast_dir[k] == 1;
      uint32_t i = kNone;
      if (candidate[k] != kNone) {
        const uint32_t v = candidate[k];
        const Flow& f = pool[v >> 2];
        // The candidate was read before earlier packets of this burst ran: re-check liveness.
        const bool match = (v & 3) == keys[k].kind && (f.flags & kFlowLive) &&
                           (is_out ? f.inside_key() == keys[k] : f.outside_key() == keys[k]);
        i = match ? (v >> 2) : find(keys[k], hashes[k]);
      }
      if (i != kNone) {
        if (is_out) {
          counters.add(Event::PacketsInFromSource);
          counters.add(Event::BytesInFromSource, p.ip_len);
        } else {
          counters.add(Event::PacketsInFromDestination);
          counters.add(Event::BytesInFromDestination, p.ip_len);
        }
        // Common case inline: no TCP control flags (tcp_flags is 0 for UDP/ICMP), TTL fine.
        if (p.ttl > 1 && !(p.tcp_flags & (kTcpSyn | kTcpFin | kTcpRst)) &&
            !(pool[i].flags & (kFlowPending | kFlowDenied))) {
          Flow& f = pool[i];
          rewrite(f, p, is_out);
          account_forward(i, f, p, is_out);
          out[k] = Result{is_out ? Verdict::ToOutside : Verdict::ToInside, DropReason::Count, 0};
          continue;
        }
        if (forward(i, pkt, p, is_out, out[k])) continue;
        out[k] = is_out ? slow_out(pkt, p, i) : slow_in(pkt, p, i);
        continue;
      }
      // The miss is final unless an earlier packet of this burst may have created this flow.
      const bool final_miss =
          is_out ? !burst_created_maybe(hashes[k]) : counters.get(Event::FlowsCreated) == created0;
      out[k] = process_one(pkt, p, l3_kinds[k], kNone, final_miss);
      continue;
    }
    out[k] = process_one(pkt, p, l3_kinds[k], kNone);
  }
}

}  // namespace eipgate::engine
