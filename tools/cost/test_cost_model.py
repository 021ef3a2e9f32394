"""Unit tests of the cost model's arithmetic on a fixed prices file (testdata/prices-fixed.json).

Run: /usr/bin/python3 -m unittest discover -s tools/cost -p 'test_*.py' (ctest: cost_model)."""
import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eipgate_cost as m  # noqa: E402

FIXED = os.path.join(HERE, "testdata", "prices-fixed.json")
NO_PPS = m.Measured()


class Prices(unittest.TestCase):
    def setUp(self):
        self.p = m.load_prices(FIXED)

    def test_nat_gateway_is_hours_plus_processing_plus_ipv4(self):
        c = m.profile_cost(self.p, "nat-gateway", m.Workload(10, 2), NO_PPS)
        # 2 AZ x 0.05 x 1000 h + 10 TB x 1000 GB x 0.04 + 2 x 0.01 x 1000
        self.assertAlmostEqual(c.items["nat_gateway_hours"], 100.0)
        self.assertAlmostEqual(c.items["nat_gateway_processing"], 400.0)
        self.assertAlmostEqual(c.items["public_ipv4"], 20.0)
        self.assertAlmostEqual(c.monthly, 520.0)
        self.assertAlmostEqual(c.per_az, 260.0)

    def test_eipgate_is_a_pair_per_az_with_one_eip(self):
        c = m.profile_cost(self.p, "eipgate", m.Workload(0.1, 3), NO_PPS)
        self.assertEqual(c.sizing.instance, "small")
        self.assertAlmostEqual(c.items["instances"], 2 * 3 * 0.01 * 1000)
        self.assertAlmostEqual(c.items["ebs_root"], 2 * 3 * 10 * 0.1)
        self.assertAlmostEqual(c.items["public_ipv4"], 3 * 0.01 * 1000)
        self.assertNotIn("nat_gateway_hours", c.items)

    def test_fck_nat_is_one_instance_per_az(self):
        c = m.profile_cost(self.p, "fck-nat", m.Workload(0.1, 2), NO_PPS)
        self.assertAlmostEqual(c.monthly, 2 * 0.01 * 1000 + 2 * 10 * 0.1 + 2 * 0.01 * 1000)

    def test_alternat_pays_an_idle_nat_gateway_but_no_processing(self):
        c = m.profile_cost(self.p, "alternat", m.Workload(100, 2), NO_PPS)
        self.assertAlmostEqual(c.items["nat_gateway_hours"], 2 * 0.05 * 1000)
        self.assertNotIn("nat_gateway_processing", c.items)
        self.assertAlmostEqual(c.items["public_ipv4"], 2 * 2 * 0.01 * 1000)

    def test_data_transfer_out_is_tiered(self):
        self.assertAlmostEqual(m.data_transfer_out(self.p, 4), 4 * 1000 * 0.1)
        self.assertAlmostEqual(m.data_transfer_out(self.p, 30), 10 * 1000 * 0.1 + 20 * 1000 * 0.05)
        self.assertAlmostEqual(m.data_transfer_out(self.p, 0), 0)


class Sizing(unittest.TestCase):
    def setUp(self):
        self.p = m.load_prices(FIXED)

    def test_throughput_conversion(self):
        w = m.Workload(1, 1, peak_to_average=4)
        avg = 1e12 * 8 / (730 * 3600)
        self.assertAlmostEqual(w.avg_bps_per_az(), avg)
        self.assertAlmostEqual(w.peak_bps_per_az(), 4 * avg)
        self.assertAlmostEqual(m.Workload(2, 2).avg_bps_per_az(), avg)

    def test_peak_over_baseline_bandwidth_needs_the_bigger_instance(self):
        # small: 0.1 Gbit/s baseline. Peak per AZ = 4 x TB x 8e12 / 2.628e6 s.
        limit_tb = 0.1e9 * 730 * 3600 / 8e12 / 4  # ~8.2 TB per AZ
        s = m.size_instance(self.p, m.Workload(limit_tb * 0.99, 1), None)
        self.assertEqual((s.instance, s.fits), ("small", True))
        s = m.size_instance(self.p, m.Workload(limit_tb * 1.01, 1), None)
        self.assertEqual((s.instance, s.fits, s.binding), ("large", True, "baseline bandwidth (peak)"))

    def test_allow_burst_sizes_the_average_on_baseline(self):
        limit_tb = 0.1e9 * 730 * 3600 / 8e12  # average at the small's baseline
        s = m.size_instance(self.p, m.Workload(limit_tb * 0.99, 1, allow_burst=True), None)
        self.assertEqual(s.instance, "small")
        s = m.size_instance(self.p, m.Workload(limit_tb * 1.01, 1, allow_burst=True), None)
        self.assertEqual(s.instance, "large")

    def test_packet_rate_per_core(self):
        w = m.Workload(1, 1, packet_bytes=1000)
        peak_pps = w.peak_bps_per_az() / 8 / 1000
        # small has one worker core (2 cores, one for the main lcore)
        self.assertEqual(m.size_instance(self.p, w, peak_pps * 1.01 / 0.1).instance, "small")
        s = m.size_instance(self.p, w, peak_pps * 0.99)
        self.assertEqual((s.instance, s.binding), ("large", "packet rate per core (peak)"))
        self.assertAlmostEqual(s.cores_needed_peak, 1 / 0.99)

    def test_cpu_baseline_of_burstable(self):
        w = m.Workload(1, 1, packet_bytes=1000)
        avg_pps = w.avg_bps_per_az() / 8 / 1000
        # small may use 10% of its 2 cores on average: 0.2 cores' worth of packets
        s = m.size_instance(self.p, w, avg_pps / 0.2 * 0.99)
        self.assertEqual((s.instance, s.binding), ("large", "CPU baseline (average)"))

    def test_memory(self):
        eip = self.p["profiles"]["eipgate"]["memory"]
        small = self.p["instances"]["small"]
        # 200 OS + 100 fixed + 50 x (1 worker + 1) + 1 KiB a connection (fixed file: round numbers)
        self.assertAlmostEqual(m.memory_need_mib(eip, small, 10240), 200 + 100 + 100 + 10)
        self.assertEqual(m.memory_need_mib(None, small, 10240), 0)
        limit = (1024 - 400) * 1024  # connections that fit in small's 1 GiB
        s = m.size_instance(self.p, m.Workload(0.1, 1, connections_per_az=limit), None, memory=eip)
        self.assertEqual(s.instance, "small")
        s = m.size_instance(self.p, m.Workload(0.1, 1, connections_per_az=limit + 1), None, memory=eip)
        self.assertEqual((s.instance, s.binding), ("large", "memory"))
        c = m.profile_cost(self.p, "eipgate", m.Workload(0.1, 1, connections_per_az=limit + 1), NO_PPS)
        self.assertEqual(c.sizing.instance, "large")
        c = m.profile_cost(self.p, "fck-nat", m.Workload(0.1, 1, connections_per_az=limit + 1), NO_PPS)
        self.assertEqual(c.sizing.instance, "small")  # no memory model for the kernel NAT in this file

    def test_nothing_fits(self):
        s = m.size_instance(self.p, m.Workload(10000, 1), None)
        self.assertEqual((s.instance, s.fits), ("large", False))

    def test_forced_instance(self):
        s = m.size_instance(self.p, m.Workload(100, 1), None, forced="small")
        self.assertEqual((s.instance, s.fits), ("small", False))
        with self.assertRaises(ValueError):
            m.size_instance(self.p, m.Workload(1, 1), None, forced="nope")


class Inputs(unittest.TestCase):
    def test_parse_nat_compare_takes_median_of_round_peaks(self):
        text = ("# x\n\n```\n"
                "iptables 1 50000 100 100 10 20 0 a\niptables 1 max 300 300 80 100 0 a\n"
                "iptables 2 max 200 300 80 100 0 a\niptables 3 max 250 300 80 100 0 a\n"
                "eipgate-af_xdp 1 max 120 300 99 100 0 b\n```\n")
        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as f:
            f.write(text)
        try:
            got = m.parse_nat_compare(f.name)
            self.assertEqual(got, {"iptables": 250, "eipgate-af_xdp": 120})
            meas = m.measured_from_nat_compare(f.name)
            self.assertEqual((meas.eipgate_pps_per_core, meas.kernel_pps_per_core), (120, 250))
        finally:
            os.unlink(f.name)

    def test_nat_xdp_csv_takes_median_of_round_peaks_nearest_100k_flows(self):
        head = ("round,flows,mode,step,keep,offered_pps,sent,gen_seconds,nat_ring_refused,received,"
                "forwarded_pps,sink_pps,nat_busy_pct,gen_busy_pct,sink_side_drops,wrong_src,bad_ip_csum,"
                "bad_l4_csum,not_ipv4,lat_p50_ns,lat_p99_ns,note,nat_threads_pct,fastpath_packets\n")
        def row(rnd, flows, mode, keep, fwd, step="sweep"):
            return f"{rnd},{flows},{mode},{step},{keep},{2 * fwd},1,2,0,{2 * fwd},{fwd},{fwd},90,50,0,0,0,0,0,,,,80,\n"
        text = head + "".join([
            row(1, 4096, "iptables", 8, 999), row(1, 100000, "iptables", 8, 300),
            row(1, 100000, "iptables", 1, 250), row(2, 100000, "iptables", 8, 200),
            row(3, 100000, "iptables", 1, 260), row(1, 100000, "eipgate-af_xdp", 1, 500),
            row(1, 100000, "eipgate-af_xdp", 1, 9999, step="warmup"),
            "1,100000,nft-flowtable,unavailable,,,,,,,,,,,,,,,,,,not available here,,\n"])
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            f.write(text)
        try:
            meas = m.measured_from_nat_compare(f.name)
            self.assertEqual((meas.eipgate_pps_per_core, meas.kernel_pps_per_core), (500, 260))
            self.assertIn("100000 flows", meas.source)
        finally:
            os.unlink(f.name)

    def test_break_even(self):
        p = m.load_prices(FIXED)
        # fck-nat (~40/month for 2 AZ) is cheaper than NAT Gateway (120 + 40/TB) at every volume.
        self.assertEqual(m.break_even_tb(p, 2, "fck-nat", "nat-gateway", NO_PPS), 0.001)
        self.assertIsNone(m.break_even_tb(p, 2, "nat-gateway", "fck-nat", NO_PPS))

    def test_shipped_prices_files_load(self):
        for path in os.listdir(HERE):
            if path.startswith("prices-") and path.endswith(".json"):
                p = m.load_prices(os.path.join(HERE, path))
                for name, inst in p["instances"].items():
                    for key in ("hourly", "memory_gib", "vcpus", "cores", "cpu_baseline", "baseline_gbps", "burst_gbps"):
                        self.assertIn(key, inst, f"{path}: {name}")


class Cli(unittest.TestCase):
    def run_cli(self, *args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = m.main(["--prices", FIXED, "--pps-per-core", "1e6", "--kernel-pps-per-core", "1e6",
                         *args])
        return rc, out.getvalue()

    def test_json_single_case(self):
        rc, out = self.run_cli("--tb-per-month", "10", "--azs", "2", "--json")
        self.assertEqual(rc, 0)
        d = json.loads(out)
        self.assertAlmostEqual(d["costs"]["nat-gateway"]["monthly_usd"], 520.0)
        self.assertAlmostEqual(d["data_transfer_out_usd"], 5 * 1000 * 0.1)

    def test_table_has_the_grid(self):
        rc, out = self.run_cli("--table", "--json")
        rows = json.loads(out)["grid"]
        self.assertEqual([(r["tb_per_month"], r["azs"]) for r in rows],
                         [(tb, az) for az in (2, 3) for tb in (0.1, 1, 10, 100)])
        rc, out = self.run_cli("--table")
        self.assertEqual(out.count("\n| "), 8)

    def test_series(self):
        rc, out = self.run_cli("--series", "--azs", "3")
        lines = out.strip().split("\n")
        self.assertEqual(len(lines), 122)
        self.assertEqual(len(lines[1].split("\t")), 6)

    def test_profile_and_instance_flags(self):
        rc, out = self.run_cli("--profile", "eipgate", "--instance-type", "large", "--json")
        d = json.loads(out)
        self.assertEqual(list(d["costs"]), ["eipgate"])
        self.assertEqual(d["costs"]["eipgate"]["instance"]["type"], "large")


if __name__ == "__main__":
    unittest.main()
