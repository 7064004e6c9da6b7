import { assertEquals } from "../../tests/assert.ts";
import { createIpMatcher, formatIp, parseIp, parseRange } from "./ip.ts";

Deno.test("parseIp() reads IPv4, IPv6, brackets, zones and IPv4-mapped IPv6 as IPv4", () => {
  assertEquals(formatIp(parseIp("192.168.1.20")!), "192.168.1.20");
  assertEquals(formatIp(parseIp("::1")!), "::1");
  assertEquals(formatIp(parseIp("[2001:db8::5]")!), "2001:db8::5");
  assertEquals(formatIp(parseIp("fe80::1%eth0")!), "fe80::1");
  assertEquals(formatIp(parseIp("::ffff:10.1.2.3")!), "10.1.2.3");
  assertEquals(formatIp(parseIp("::ffff:a01:203")!), "10.1.2.3");
  assertEquals(formatIp(parseIp("2001:db8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1");
});

Deno.test("parseIp() refuses malformed addresses", () => {
  for (
    const bad of [
      "",
      "1.2.3",
      "1.2.3.256",
      "1.2.3.4.5",
      "01.2.3.4x",
      "::1::2",
      "1:2:3:4:5:6:7:8:9",
      "g::1",
      "1.2.3.-1",
    ]
  ) {
    assertEquals(parseIp(bad), null, bad);
  }
});

Deno.test("createIpMatcher() matches addresses and CIDRs of both families", () => {
  const matches = createIpMatcher([
    "10.0.0.0/8",
    "192.168.1.7",
    "2001:db8::/32",
    "::ffff:172.16.0.0/108",
  ]);
  assertEquals(matches(parseIp("10.200.3.4")), true);
  assertEquals(matches(parseIp("11.0.0.1")), false);
  assertEquals(matches(parseIp("192.168.1.7")), true);
  assertEquals(matches(parseIp("192.168.1.8")), false);
  assertEquals(matches(parseIp("2001:db8:ffff::1")), true);
  assertEquals(matches(parseIp("2001:db9::1")), false);
  // IPv4-mapped IPv6 peers count as IPv4, both as addresses and as ranges.
  assertEquals(matches(parseIp("::ffff:10.9.9.9")), true);
  assertEquals(matches(parseIp("172.31.255.255")), true);
  assertEquals(matches(parseIp("172.32.0.0")), false);
  assertEquals(matches(null), false);
});

Deno.test("parseRange() refuses bad prefixes", () => {
  for (
    const bad of ["10.0.0.0/33", "10.0.0.0/-1", "::/129", "10.0.0.0/8/1", "10.0.0.0/x", "nonsense"]
  ) {
    assertEquals(parseRange(bad), null, bad);
  }
  assertEquals(parseRange("0.0.0.0/0")?.prefix, 0);
});
