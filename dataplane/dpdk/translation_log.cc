// The translation log on the main lcore: the workers' rings of engine::TxLogRecord drained to
// JSON lines in a size-rotated file (dataplane/admin/translation_log.h). File I/O happens here
// only, never on a worker; a worker whose ring is full counts the records and moves on.
#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "dataplane/dpdk/dataplane_impl.h"

namespace eipgate::dataplane {

namespace {

uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

void Dataplane::Impl::write_translations() {
  if (!cfg.translation_log.enabled) return;
  if (!txlog_file) {
    txlog_file = std::make_unique<txlog::RotatingFile>(
        cfg.translation_log.path, cfg.translation_log.max_bytes, cfg.translation_log.keep);
  }
  // Engine times are the workers' monotonic clock in ms, modulo 2^32: a record's age is the
  // difference, its wall-clock time now minus that age.
  const auto mono = static_cast<uint32_t>(now_ns() / 1000000);
  const uint64_t wall = wall_ms();
  // The policy names the rules; looked up (under admin_mu) only when there is something to write.
  std::shared_ptr<const DataplaneConfig> running;
  const policy::CompiledPolicy* pol = nullptr;
  engine::TxLogRecord t[64];
  uint64_t lines = 0;
  txlog_buf.clear();
  for (const auto& w : workers) {
    if (w->txlog == nullptr) continue;
    unsigned n;
    // Bounded per call: the main lcore has other work; the rest waits in the ring.
    for (int rounds = 0; rounds < 64 && (n = rte_ring_sc_dequeue_burst_elem(
                                             w->txlog, t, sizeof t[0], 64, nullptr)) > 0;
         ++rounds) {
      if (!running) {
        running = running_config();
        pol = running->engine.policy.get();
      }
      for (unsigned i = 0; i < n; ++i) {
        const auto& r = t[i];
        const uint32_t age = mono - static_cast<uint32_t>(r.time_ms);
        const std::string_view rule =
            pol && r.rule_id < pol->rule_count() ? pol->rule_name(r.rule_id) : std::string_view{};
        txlog::append_line(txlog_buf, r, wall >= age ? wall - age : 0, rule);
        ++lines;
      }
    }
  }
  if (lines == 0) return;
  const uint64_t rotations = txlog_file->rotations();
  if (txlog_file->write(txlog_buf)) {
    txlog_written.fetch_add(lines, std::memory_order_relaxed);
    txlog_bytes.fetch_add(txlog_buf.size(), std::memory_order_relaxed);
  } else {
    txlog_write_dropped.fetch_add(lines, std::memory_order_relaxed);
    if (txlog_write_errors.fetch_add(1, std::memory_order_relaxed) == 0) {
      log->error("translation log: {} ({} records dropped; later errors are counted only)",
                 txlog_file->error(), lines);
    }
  }
  txlog_rotations.fetch_add(txlog_file->rotations() - rotations, std::memory_order_relaxed);
}

void Dataplane::Impl::flush_translations() {
  if (!cfg.translation_log.enabled) return;
  engine::TxLogRecord t[64];
  for (;;) {
    bool more = false;
    for (const auto& w : workers) {
      if (w->txlog == nullptr) continue;
      const unsigned room = std::min<unsigned>(64, rte_ring_free_count(w->txlog));
      if (const uint32_t n = w->eng->drain_translations(t, room)) {
        rte_ring_sp_enqueue_burst_elem(w->txlog, t, sizeof t[0], n, nullptr);
      }
      more |= rte_ring_count(w->txlog) != 0;
    }
    if (!more) return;
    write_translations();
  }
}

admin::TranslationLogReport Dataplane::Impl::translation_log_report() const {
  admin::TranslationLogReport r;
  r.enabled = cfg.translation_log.enabled;
  r.path = cfg.translation_log.path;
  r.records_written = txlog_written.load(std::memory_order_relaxed);
  uint64_t engine_lost = 0;
  for (const auto& w : workers) {
    std::lock_guard lock(w->pub_mu);
    engine_lost += w->published.txlog_lost;
  }
  r.records_dropped = engine_lost + txlog_ring_dropped.load(std::memory_order_relaxed) +
                      txlog_write_dropped.load(std::memory_order_relaxed);
  r.bytes_written = txlog_bytes.load(std::memory_order_relaxed);
  r.rotations = txlog_rotations.load(std::memory_order_relaxed);
  r.write_errors = txlog_write_errors.load(std::memory_order_relaxed);
  return r;
}

}  // namespace eipgate::dataplane
