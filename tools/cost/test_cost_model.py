"""Unit tests of the cost model's arithmetic on a fixed prices file (testdata/prices-fixed.json).

Run: /usr/bin/python3 -m unittest discover -s tools/cost -p 'test_*.py' (ctest: cost_model)."""
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eipgate_cost as m  # noqa: E402

FIXED = os.path.join(HERE, "testdata", "prices-fixed.json")
NO_PPS = m.Measured()


class Prices(unittest.TestCase):
    """Every line on the fixed prices (round numbers: H = 1000 h)."""

    def setUp(self):
        self.p = m.load_prices(FIXED)

    def cost(self, profile, tb, azs, **dep):
        return m.profile_cost(self.p, profile, m.Workload(tb, azs), NO_PPS, None, m.Deployment(**dep))

    def test_nat_gateway_is_hours_plus_processing_plus_ipv4(self):
        c = self.cost("nat-gateway", 10, 2)
        # 2 AZ x 0.05 x 1000 h + 10 TB x 1000 GB x 0.04 + 2 x 0.01 x 1000
        self.assertEqual(c.items, {"nat_gateway_hours": 100.0, "nat_gateway_processing": 400.0,
                                   "public_ipv4_nat": 20.0})
        self.assertAlmostEqual(c.monthly, 520.0)
        self.assertAlmostEqual(c.per_az, 260.0)

    def test_eipgate_public_ip_counts_every_line(self):
        c = self.cost("eipgate", 0.1, 3, management_access="PublicIp")
        self.assertEqual(c.sizing.instance, "small")
        want = {"public_ipv4_nat": 3 * 1 * 0.01 * 1000,           # one service EIP a pair
                "public_ipv4_management": 6 * 0.01 * 1000,        # an EIP per instance
                "instances": 6 * 0.01 * 1000,
                "ebs_root": 6 * 10 * 0.1,
                "secrets_manager": 3 * 1.0,
                "detailed_monitoring": 6 * 10 * 0.5,              # 10 metrics an instance
                "recovery_alarms": 3 * 2 * 0.2}
        self.assertEqual(set(c.items), set(want))
        for k, v in want.items():
            self.assertAlmostEqual(c.items[k], v, msg=k)
        self.assertAlmostEqual(c.monthly, sum(want.values()))
        self.assertEqual([ln.key for ln in c.lines], [k for k, _ in m.LINES if k in want])
        self.assertEqual(next(ln for ln in c.lines if ln.key == "public_ipv4_management").quantity, 6)

    def test_service_eips_per_pair(self):
        c = self.cost("eipgate", 1, 2, service_eips=8)
        self.assertAlmostEqual(c.items["public_ipv4_nat"], 2 * 8 * 0.01 * 1000)
        with self.assertRaises(ValueError):
            self.cost("eipgate", 1, 2, service_eips=0)

    def test_vpc_endpoints_replace_the_management_addresses(self):
        c = self.cost("eipgate", 1, 2, management_access="VpcEndpoints")
        self.assertNotIn("public_ipv4_management", c.items)
        self.assertAlmostEqual(c.items["vpc_endpoints_hours"], 2 * 2 * 0.02 * 1000)  # ec2 + secretsmanager, per AZ
        self.assertAlmostEqual(c.items["vpc_endpoints_data"], 4 * 1 * 0.01)         # 1 GB an instance
        # metrics add the monitoring endpoint, logs the logs endpoint (and their bytes), SSM three
        c = self.cost("eipgate", 1, 2, management_access="VpcEndpoints", cloudwatch="default",
                      logs_gb_per_month=10, ssm_endpoints=True)
        self.assertAlmostEqual(c.items["vpc_endpoints_hours"], 7 * 2 * 0.02 * 1000)
        self.assertAlmostEqual(c.items["vpc_endpoints_data"], (4 + 10) * 0.01)
        self.assertIn("monitoring", next(ln.unit for ln in c.lines if ln.key == "vpc_endpoints_hours"))

    def test_ipv6_management_adds_nothing(self):
        ipv6 = self.cost("eipgate", 1, 2, management_access="Ipv6")
        pub = self.cost("eipgate", 1, 2, management_access="PublicIp")
        self.assertAlmostEqual(pub.monthly - ipv6.monthly, 4 * 0.01 * 1000)
        self.assertFalse({"public_ipv4_management", "vpc_endpoints_hours"} & set(ipv6.items))
        self.assertNotIn("planned", ipv6.deployment)   # built: the templates' default
        self.assertEqual(m.Deployment().management_access, "Ipv6")
        self.assertEqual(self.cost("eipgate", 1, 2).monthly, ipv6.monthly)
        with self.assertRaises(ValueError):
            self.cost("eipgate", 1, 2, management_access="Carrier")

    def test_cloudwatch_metric_sets(self):
        c = self.cost("eipgate", 1, 2, management_access="Ipv6", cloudwatch="default")
        self.assertAlmostEqual(c.items["cloudwatch_metrics"], 5 * 2 * 0.5)       # 5 a pair
        self.assertAlmostEqual(c.items["cloudwatch_requests"], 2 * 2 * 1000 * 60 / 1000 * 0.01)
        self.assertAlmostEqual(c.items["cloudwatch_alarms"], 5 * 2 * 0.2)
        c = self.cost("eipgate", 1, 2, management_access="Ipv6", cloudwatch="full")
        self.assertAlmostEqual(c.items["cloudwatch_metrics"], 6 * 2 * 0.5)       # 3 NAT GW + 3 HA names
        self.assertNotIn("cloudwatch_metrics", self.cost("eipgate", 1, 2).items)
        with self.assertRaises(ValueError):
            self.cost("eipgate", 1, 2, cloudwatch="some")

    def test_logs_cross_az_and_detailed_monitoring(self):
        c = self.cost("eipgate", 10, 2, logs_gb_per_month=20, cross_az_share=0.25,
                      detailed_monitoring=False)
        self.assertAlmostEqual(c.items["cloudwatch_logs"], 20 * (0.5 + 0.05))
        # a quarter of 10,000 GB crosses once, billed $0.01 on each side
        self.assertAlmostEqual(c.items["cross_az"], 2500 * 0.02)
        self.assertNotIn("detailed_monitoring", c.items)

    def test_fck_nat_is_one_instance_per_az(self):
        c = self.cost("fck-nat", 0.1, 2)
        self.assertAlmostEqual(c.monthly, 2 * 0.01 * 1000 + 2 * 10 * 0.1 + 2 * 0.01 * 1000)
        # eipgate's options do not touch the others
        self.assertAlmostEqual(self.cost("fck-nat", 0.1, 2, cross_az_share=1, cloudwatch="full").monthly,
                               c.monthly)

    def test_alternat_pays_an_idle_nat_gateway_an_ec2_endpoint_and_a_lambda(self):
        c = self.cost("alternat", 100, 2)
        want = {"nat_gateway_hours": 2 * 0.05 * 1000, "public_ipv4_nat": 2 * 2 * 0.01 * 1000,
                "instances": 2 * 0.1 * 1000,  # 100 TB needs the large
                "ebs_root": 2 * 2 * 0.1, "vpc_endpoints_hours": 2 * 0.02 * 1000,
                "vpc_endpoints_data": 2 * 1 * 0.01, "detailed_monitoring": 2 * 10 * 0.5,
                "lambda": 2 * (100000 / 1e6 * 1.0 + 100000 * 0.5 * 2 * 0.00001)}
        self.assertEqual(set(c.items), set(want))
        for k, v in want.items():
            self.assertAlmostEqual(c.items[k], v, msg=k)

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


class InternetEgress(unittest.TestCase):
    def test_gateway_share_by_vcpus(self):
        egress = {"gbps_below_32_vcpus": 5, "share_from_32_vcpus": 0.5}
        self.assertEqual(m.internet_gbps({"vcpus": 2}, 3.125, egress), 3.125)   # c6in.large baseline
        self.assertEqual(m.internet_gbps({"vcpus": 2}, 25, egress), 5)          # its burst
        self.assertEqual(m.internet_gbps({"vcpus": 32}, 50, egress), 25)        # c6in.8xlarge
        self.assertEqual(m.internet_gbps({"vcpus": 32}, 50, None), 50)

    def test_sizing_applies_the_cap_to_the_internet_bound_share(self):
        p = m.load_prices(FIXED)
        # large: 10 Gbit/s baseline but 5 to the internet. A 6 Gbit/s peak fits when half of it
        # leaves for the internet, not when all of it does.
        tb = 1.5e9 * m.SECONDS_PER_MONTH / 8e12  # average 1.5, peak 6 Gbit/s
        s = m.size_instance(p, m.Workload(tb, 1, out_share=0.5), None)
        self.assertEqual((s.instance, s.fits), ("large", True))
        s = m.size_instance(p, m.Workload(tb, 1, out_share=1.0), None)
        self.assertEqual((s.instance, s.fits, s.binding), ("large", False, "internet gateway bandwidth (peak)"))


REAL = os.path.join(HERE, "prices-us-east-1.json")
README = os.path.join(os.path.dirname(os.path.dirname(HERE)), "README.md")


class ByHand(unittest.TestCase):
    """Rows of the shipped table recomputed here from the shipped prices file, with arithmetic
    written out on its own (no model function), so the model cannot drift from the price file."""

    def setUp(self):
        with open(REAL, encoding="utf-8") as f:
            self.raw = json.load(f)

    def test_eipgate_public_ip_1tb_2azs(self):
        r = self.raw
        hours = r["hours_per_month"]
        nano = r["instances"]["t4g.nano"]
        eip = r["profiles"]["eipgate"]
        # t4g.nano is the cheapest type in the file, and it carries the case: peak 4x the average
        # of 1 TB over 2 AZs against its baseline, and 100k connections in its 512 MiB.
        self.assertEqual(min(r["instances"], key=lambda n: r["instances"][n]["hourly"]), "t4g.nano")
        peak_bps = 4 * 1e12 * 8 / (730 * 3600) / 2
        self.assertLess(peak_bps, nano["baseline_gbps"] * 1e9)
        mem = eip["memory"]
        need_mib = (mem["os_mib"] + mem["fixed_mib"] + mem["per_queue_mib"] * 2
                    + 100000 * mem["per_connection_bytes"] / 1048576)
        self.assertLess(need_mib, 512)
        instances, pairs = 4, 2
        by_hand = (pairs * 1 * r["public_ipv4"]["hourly"] * hours          # service EIPs
                   + instances * 1 * r["public_ipv4"]["hourly"] * hours    # management EIPs
                   + instances * nano["hourly"] * hours
                   + instances * 8 * r["ebs_root"]["per_gb_month"]
                   + pairs * r["secrets_manager"]["secret_month"]
                   # no EC2 detailed monitoring: the launch template leaves it off
                   + pairs * 2 * r["cloudwatch"]["alarm_standard_month"])
        c = m.profile_cost(m.load_prices(REAL), "eipgate", m.Workload(1, 2), m.Measured(1.2e6, 4e5),
                           deployment=m.Deployment("PublicIp"))
        self.assertEqual(c.sizing.instance, "t4g.nano")
        self.assertAlmostEqual(c.monthly, by_hand, places=6)
        row = self.readme_row(1, 2)
        self.assertEqual(row[1], f"${by_hand:,.2f} (t4g.nano)")
        # Ipv6 (the default): the same without the management EIPs
        ipv6 = by_hand - instances * 1 * r["public_ipv4"]["hourly"] * hours
        c = m.profile_cost(m.load_prices(REAL), "eipgate", m.Workload(1, 2), m.Measured(1.2e6, 4e5))
        self.assertAlmostEqual(c.monthly, ipv6, places=6)
        self.assertEqual(row[3], f"${ipv6:,.2f} (t4g.nano)")

    def test_nat_gateway_10tb_2azs(self):
        r = self.raw
        hours = r["hours_per_month"]
        by_hand = (2 * r["nat_gateway"]["hourly"] * hours + 10 * 1000 * r["nat_gateway"]["per_gb_processed"]
                   + 2 * r["public_ipv4"]["hourly"] * hours)
        self.assertEqual(self.readme_row(10, 2)[0], f"${by_hand:,.0f}")

    def readme_row(self, tb, azs):
        """The README's totals row for (tb, azs): its option cells."""
        block = m.readme_block(README)
        for line in block.splitlines():
            cells = [x.strip() for x in line.strip("|").split("|")]
            if len(cells) > 3 and cells[0] == f"{tb:g}" and cells[1] == str(azs):
                return cells[2:]
        self.fail(f"no row {tb} TB / {azs} AZs in README.md's cost table")


class Readme(unittest.TestCase):
    def test_readme_table_is_the_commands_output(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(m.main(["--markdown"]), 0)
        self.assertEqual(m.readme_block(README), out.getvalue().rstrip("\n"),
                         "README.md's cost tables are stale: run "
                         "tools/cost/eipgate-cost --update-readme README.md")

    def test_full_metric_set_is_control_daemon_metrics_list(self):
        src = os.path.join(os.path.dirname(os.path.dirname(HERE)), "control", "daemon", "metrics.cc")
        with open(src, encoding="utf-8") as f:
            text = f.read()
        block = text[text.index("kNatGateway = {{"):text.index("}};", text.index("kNatGateway = {{"))]
        names = re.findall(r'\{"([A-Za-z]+)",', block)
        self.assertEqual(len(names), 14)
        cw = m.load_prices(REAL)["profiles"]["eipgate"]["cloudwatch"]
        self.assertEqual(cw["nat_gateway_metrics"], names)
        own = text[text.index("kEipgateNatMetrics = {{"):text.index("}};", text.index("kEipgateNatMetrics = {{"))]
        own_names = re.findall(r'\{"([A-Za-z]+)",', own)
        self.assertEqual(cw["eipgate_metrics"], own_names)  # ActiveNonTcpFlowCount
        self.assertEqual(len(m.cloudwatch_metric_names(m.load_prices(REAL)["profiles"]["eipgate"], "full")),
                         len(names) + len(own_names) + 3)
        self.assertTrue(set(cw["default_metrics"]) <= set(names) | set(cw["ha_metrics"]))


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
        for r in rows:  # every option itemised in the JSON, eipgate in every variant
            self.assertEqual(set(r["variants"]), {k for k, *_ in m.VARIANTS})
            for c in r["variants"].values():
                self.assertAlmostEqual(sum(ln["usd"] for ln in c["lines"]), c["monthly_usd"], places=1)
        rc, out = self.run_cli("--table")
        grid_part = out.split("\n\n")[0]
        self.assertEqual(grid_part.count("\n| "), 8)  # the rows after header and separator
        self.assertEqual(out.count("TB/month over"), 8)   # then each case itemised
        self.assertIn("| public IPv4: management ENIs |", out)

    def test_deployment_flags(self):
        rc, out = self.run_cli("--profile", "eipgate", "--management-access", "VpcEndpoints",
                               "--service-eips", "3", "--cloudwatch", "full", "--logs-gb", "5",
                               "--cross-az-share", "0.1", "--detailed-monitoring", "off", "--json")
        self.assertEqual(rc, 0)
        c = json.loads(out)["costs"]["eipgate"]
        self.assertEqual(c["deployment"], "VpcEndpoints + full CloudWatch metrics")
        q = {ln["item"]: ln["quantity"] for ln in c["lines"]}
        self.assertEqual(q["public_ipv4_nat"], 6)
        self.assertEqual(q["vpc_endpoints_hours"], 8)   # ec2, secretsmanager, monitoring, logs x 2 AZs
        self.assertEqual(q["cloudwatch_metrics"], 12)
        self.assertEqual(q["cross_az"], 100)
        self.assertNotIn("detailed_monitoring", q)
        with self.assertRaises(SystemExit):
            self.run_cli("--service-eips", "0")
        with self.assertRaises(SystemExit):
            self.run_cli("--cross-az-share", "2")

    def test_update_readme_replaces_only_the_block(self):
        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as f:
            f.write(f"# x\n\nbefore\n{m.README_BEGIN}\nold\n{m.README_END}\nafter\n")
        try:
            rc, _ = self.run_cli("--update-readme", f.name)
            self.assertEqual(rc, 0)
            text = open(f.name, encoding="utf-8").read()
            self.assertTrue(text.startswith("# x\n\nbefore\n" + m.README_BEGIN))
            self.assertTrue(text.endswith(m.README_END + "\nafter\n"))
            self.assertNotIn("\nold\n", text)
            rc, md = self.run_cli("--markdown")
            self.assertEqual(m.readme_block(f.name), md.rstrip("\n"))
            with open(f.name, "w", encoding="utf-8") as g:
                g.write("no markers\n")
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                rc, _ = self.run_cli("--update-readme", f.name)
            self.assertEqual(rc, 2)
            self.assertIn("no '<!-- eipgate-cost --markdown: begin", err.getvalue())
        finally:
            os.unlink(f.name)

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
