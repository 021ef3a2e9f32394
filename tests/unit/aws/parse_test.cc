// EC2 response parsing from recorded response shapes, error-code mapping, request encoding.
#include <gtest/gtest.h>

#include <cctype>

#include "control/aws/ec2.h"
#include "control/aws/error.h"

namespace eipgate::aws {
namespace {

// Shapes as EC2 returns them (namespace, requestId, nested sets, tags, fields we ignore).
constexpr std::string_view kRouteTables = R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeRouteTablesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>6f570b0b-9c18-4b07-bdec-73740dcf861a</requestId>
    <routeTableSet>
        <item>
            <routeTableId>rtb-0aa00000000000001</routeTableId>
            <vpcId>vpc-0a1b2c3d</vpcId>
            <ownerId>123456789012</ownerId>
            <routeSet>
                <item>
                    <destinationCidrBlock>10.0.0.0/16</destinationCidrBlock>
                    <gatewayId>local</gatewayId>
                    <state>active</state>
                    <origin>CreateRouteTable</origin>
                </item>
                <item>
                    <destinationCidrBlock>0.0.0.0/0</destinationCidrBlock>
                    <instanceId>i-0aaaaaaaaaaaaaaa1</instanceId>
                    <instanceOwnerId>123456789012</instanceOwnerId>
                    <networkInterfaceId>eni-0aaaaaaaaaaaaaad1</networkInterfaceId>
                    <state>active</state>
                    <origin>CreateRoute</origin>
                </item>
                <item>
                    <destinationPrefixListId>pl-63a5400a</destinationPrefixListId>
                    <gatewayId>vpce-0123</gatewayId>
                    <state>active</state>
                    <origin>CreateRoute</origin>
                </item>
            </routeSet>
            <associationSet>
                <item>
                    <routeTableAssociationId>rtbassoc-0fe</routeTableAssociationId>
                    <routeTableId>rtb-0aa00000000000001</routeTableId>
                    <subnetId>subnet-private-a1</subnetId>
                    <main>false</main>
                    <associationState><state>associated</state></associationState>
                </item>
            </associationSet>
            <propagatingVgwSet/>
            <tagSet>
                <item><key>Name</key><value>private-a1</value></item>
                <item><key>eipgate:az</key><value>use1-az1</value></item>
            </tagSet>
        </item>
    </routeTableSet>
    <nextToken>eyJ2IjoiMiJ9</nextToken>
</DescribeRouteTablesResponse>)";

TEST(Ec2Parse, DescribeRouteTables) {
  const auto tables = parse_describe_route_tables(kRouteTables);
  ASSERT_EQ(tables.size(), 1u);
  const auto& t = tables[0];
  EXPECT_EQ(t.id, "rtb-0aa00000000000001");
  EXPECT_EQ(t.vpc_id, "vpc-0a1b2c3d");
  ASSERT_EQ(t.routes.size(), 3u);
  EXPECT_EQ(t.routes[0].gateway_id, "local");
  EXPECT_EQ(t.routes[0].origin, "CreateRouteTable");
  const Route* def = t.route_to("0.0.0.0/0");
  ASSERT_NE(def, nullptr);
  EXPECT_EQ(def->network_interface_id, "eni-0aaaaaaaaaaaaaad1");
  EXPECT_EQ(def->instance_id, "i-0aaaaaaaaaaaaaaa1");
  EXPECT_EQ(def->state, "active");
  EXPECT_EQ(t.routes[2].destination_cidr, "");  // a prefix-list route has no CIDR
  EXPECT_EQ(t.route_to("192.0.2.0/24"), nullptr);
  ASSERT_EQ(t.associations.size(), 1u);
  EXPECT_EQ(t.associations[0].subnet_id, "subnet-private-a1");
  EXPECT_FALSE(t.associations[0].main);
  EXPECT_EQ(t.tags.at("eipgate:az"), "use1-az1");
  EXPECT_EQ(parse_next_token(kRouteTables), "eyJ2IjoiMiJ9");
}

TEST(Ec2Parse, DescribeAddresses) {
  const auto a = parse_describe_addresses(R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
   <requestId>f7de5e98-491a-4c19-a92d-908d6EXAMPLE</requestId>
   <addressesSet>
      <item>
         <publicIp>203.0.113.10</publicIp>
         <allocationId>eipalloc-0aa00000000000001</allocationId>
         <domain>vpc</domain>
         <associationId>eipassoc-0fe1</associationId>
         <instanceId>i-0aaaaaaaaaaaaaaa1</instanceId>
         <networkInterfaceId>eni-0aaaaaaaaaaaaaad1</networkInterfaceId>
         <networkInterfaceOwnerId>123456789012</networkInterfaceOwnerId>
         <privateIpAddress>10.0.0.100</privateIpAddress>
         <publicIpv4Pool>amazon</publicIpv4Pool>
         <networkBorderGroup>us-east-1</networkBorderGroup>
         <tagSet><item><key>Name</key><value>eipgate</value></item></tagSet>
      </item>
      <item>
         <publicIp>203.0.113.11</publicIp>
         <allocationId>eipalloc-0bb00000000000002</allocationId>
         <domain>vpc</domain>
      </item>
   </addressesSet>
</DescribeAddressesResponse>)");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].public_ip, "203.0.113.10");
  EXPECT_EQ(a[0].association_id, "eipassoc-0fe1");
  EXPECT_EQ(a[0].network_interface_id, "eni-0aaaaaaaaaaaaaad1");
  EXPECT_EQ(a[0].private_ip, "10.0.0.100");
  EXPECT_EQ(a[0].tags.at("Name"), "eipgate");
  EXPECT_TRUE(a[1].association_id.empty());
  EXPECT_TRUE(a[1].network_interface_id.empty());
}

TEST(Ec2Parse, DescribeNetworkInterfaces) {
  const auto n = parse_describe_network_interfaces(R"(<?xml version="1.0" encoding="UTF-8"?>
<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>fc45294c-006b-457b-bab9-012f5b3b0e40</requestId>
     <networkInterfaceSet>
       <item>
         <networkInterfaceId>eni-0aaaaaaaaaaaaaad1</networkInterfaceId>
         <subnetId>subnet-public-a</subnetId>
         <vpcId>vpc-0a1b2c3d</vpcId>
         <availabilityZone>us-east-1a</availabilityZone>
         <description/>
         <ownerId>123456789012</ownerId>
         <requesterManaged>false</requesterManaged>
         <status>in-use</status>
         <macAddress>0e:00:00:00:0a:02</macAddress>
         <privateIpAddress>10.0.0.5</privateIpAddress>
         <sourceDestCheck>false</sourceDestCheck>
         <groupSet><item><groupId>sg-1a2b3c4d</groupId><groupName>default</groupName></item></groupSet>
         <attachment>
           <attachmentId>eni-attach-1</attachmentId>
           <instanceId>i-0aaaaaaaaaaaaaaa1</instanceId>
           <instanceOwnerId>123456789012</instanceOwnerId>
           <deviceIndex>1</deviceIndex>
           <status>attached</status>
           <attachTime>2024-01-01T00:00:00.000Z</attachTime>
           <deleteOnTermination>false</deleteOnTermination>
         </attachment>
         <tagSet/>
         <privateIpAddressesSet>
           <item><privateIpAddress>10.0.0.5</privateIpAddress><primary>true</primary></item>
           <item>
             <privateIpAddress>10.0.0.100</privateIpAddress>
             <primary>false</primary>
             <association>
               <publicIp>203.0.113.10</publicIp>
               <publicDnsName/>
               <ipOwnerId>amazon</ipOwnerId>
               <allocationId>eipalloc-0aa00000000000001</allocationId>
               <associationId>eipassoc-0fe1</associationId>
             </association>
           </item>
         </privateIpAddressesSet>
         <ipv6AddressesSet/>
         <interfaceType>interface</interfaceType>
       </item>
     </networkInterfaceSet>
</DescribeNetworkInterfacesResponse>)");
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].mac, "0e:00:00:00:0a:02");
  EXPECT_FALSE(n[0].source_dest_check);
  EXPECT_EQ(n[0].instance_id, "i-0aaaaaaaaaaaaaaa1");
  EXPECT_EQ(n[0].device_index, 1);
  ASSERT_EQ(n[0].private_ips.size(), 2u);
  EXPECT_TRUE(n[0].private_ips[0].primary);
  EXPECT_TRUE(n[0].private_ips[0].public_ip.empty());
  EXPECT_EQ(n[0].private_ips[1].public_ip, "203.0.113.10");
  EXPECT_EQ(n[0].private_ips[1].allocation_id, "eipalloc-0aa00000000000001");
}

TEST(Ec2Parse, DescribeInstanceStatus) {
  const auto s = parse_describe_instance_status(
      R"(<DescribeInstanceStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>3be1508e-c444-4fef-89cc-0b1223c4f02fEXAMPLE</requestId>
    <instanceStatusSet>
        <item>
            <instanceId>i-0aaaaaaaaaaaaaaa1</instanceId>
            <availabilityZone>us-east-1a</availabilityZone>
            <instanceState><code>16</code><name>running</name></instanceState>
            <systemStatus><status>impaired</status><details><item><name>reachability</name><status>failed</status></item></details></systemStatus>
            <instanceStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></instanceStatus>
        </item>
    </instanceStatusSet>
</DescribeInstanceStatusResponse>)");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].state, "running");
  EXPECT_EQ(s[0].state_code, 16);
  EXPECT_EQ(s[0].system_status, "impaired");
  EXPECT_EQ(s[0].instance_status, "ok");
}

TEST(Ec2Parse, MutationResponses) {
  EXPECT_NO_THROW(parse_return_true(
      R"(<ReplaceRouteResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>59dbff89</requestId><return>true</return></ReplaceRouteResponse>)",
      "ReplaceRoute"));
  EXPECT_THROW(
      parse_return_true(
          R"(<ReplaceRouteResponse><requestId>1</requestId><return>false</return></ReplaceRouteResponse>)",
          "ReplaceRoute"),
      AwsError);
  EXPECT_EQ(
      parse_associate_address(
          R"(<AssociateAddressResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>1</requestId><return>true</return><associationId>eipassoc-9a8b7c6d</associationId></AssociateAddressResponse>)"),
      "eipassoc-9a8b7c6d");
  const auto ips = parse_assign_private_ip_addresses(
      R"(<AssignPrivateIpAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>1</requestId><networkInterfaceId>eni-1</networkInterfaceId><assignedPrivateIpAddressesSet><item><privateIpAddress>10.0.0.100</privateIpAddress></item></assignedPrivateIpAddressesSet><return>true</return></AssignPrivateIpAddressesResponse>)");
  EXPECT_EQ(ips, std::vector<std::string>{"10.0.0.100"});
}

TEST(Ec2Parse, WrongOrBrokenDocumentsAreProtocolErrors) {
  try {
    (void)parse_describe_route_tables("<DescribeAddressesResponse/>");
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Protocol);
    EXPECT_FALSE(e.retryable());
  }
  try {
    (void)parse_describe_route_tables("<DescribeRouteTablesResponse><routeTableSet>");
    FAIL();
  } catch (const AwsError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Protocol);
  }
}

TEST(Ec2Errors, ParsesErrorDocument) {
  const auto e = parse_error_response(R"(<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidRouteTableID.NotFound</Code><Message>The routeTable ID 'rtb-1' does not exist</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>)",
                                      400);
  EXPECT_EQ(e.kind(), ErrorKind::NotFound);
  EXPECT_EQ(e.code(), "InvalidRouteTableID.NotFound");
  EXPECT_EQ(e.message(), "The routeTable ID 'rtb-1' does not exist");
  EXPECT_EQ(e.request_id(), "ea966190-f9aa-478e-9ede-example");
  EXPECT_EQ(e.http_status(), 400);
  EXPECT_NE(std::string(e.what()).find("InvalidRouteTableID.NotFound"), std::string::npos);
}

TEST(Ec2Errors, NonXmlBodiesUseTheStatus) {
  EXPECT_EQ(parse_error_response("<html>Bad Gateway</html>", 502).kind(), ErrorKind::Server);
  EXPECT_EQ(parse_error_response("", 403).kind(), ErrorKind::Auth);
  EXPECT_EQ(parse_error_response("nonsense", 400).kind(), ErrorKind::Protocol);
}

struct Mapping {
  const char* code;
  long status;
  ErrorKind kind;
  bool retryable;
};

class ErrorMapping : public ::testing::TestWithParam<Mapping> {};

TEST_P(ErrorMapping, Classifies) {
  const auto& m = GetParam();
  EXPECT_EQ(classify_error(m.code, m.status), m.kind) << m.code;
  EXPECT_EQ(AwsError(m.kind, m.code, "x", m.status).retryable(), m.retryable) << m.code;
}

INSTANTIATE_TEST_SUITE_P(
    Ec2Codes, ErrorMapping,
    ::testing::Values(
        Mapping{"RequestLimitExceeded", 503, ErrorKind::Throttling, true},
        Mapping{"Throttling", 400, ErrorKind::Throttling, true},
        Mapping{"AuthFailure", 401, ErrorKind::Auth, false},
        Mapping{"UnauthorizedOperation", 403, ErrorKind::Auth, false},
        Mapping{"RequestExpired", 400, ErrorKind::Auth, false},
        Mapping{"InvalidRouteTableID.NotFound", 400, ErrorKind::NotFound, false},
        Mapping{"InvalidRoute.NotFound", 400, ErrorKind::NotFound, false},
        Mapping{"InvalidAllocationID.NotFound", 400, ErrorKind::NotFound, false},
        Mapping{"InvalidNetworkInterfaceID.NotFound", 400, ErrorKind::NotFound, false},
        Mapping{"InvalidParameterValue", 400, ErrorKind::InvalidParameter, false},
        Mapping{"MissingParameter", 400, ErrorKind::InvalidParameter, false},
        Mapping{"InvalidParameterCombination", 400, ErrorKind::InvalidParameter, false},
        Mapping{"Resource.AlreadyAssociated", 400, ErrorKind::Conflict, false},
        Mapping{"PrivateIpAddressInUse", 400, ErrorKind::Conflict, false},
        Mapping{"InternalError", 500, ErrorKind::Server, true},
        Mapping{"Unavailable", 503, ErrorKind::Server, true},
        Mapping{"SomethingNew", 500, ErrorKind::Server, true},
        Mapping{"SomethingNew", 400, ErrorKind::Other, false}),
    [](const ::testing::TestParamInfo<Mapping>& param_info) {
      std::string name =
          std::string(param_info.param.code) + "_" + std::to_string(param_info.param.status);
      for (auto& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

TEST(Ec2Encoding, QueryBodyIsFormEncodedInOrder) {
  EXPECT_EQ(encode_query("DescribeRouteTables", {{"Filter.1.Name", "tag:eipgate:az"},
                                                 {"Filter.1.Value.1", "use1 az/1+x"}}),
            "Action=DescribeRouteTables&Version=2016-11-15&Filter.1.Name=tag%3Aeipgate%3Aaz&"
            "Filter.1.Value.1=use1%20az%2F1%2Bx");
  EXPECT_EQ(url_encode("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(url_encode("\xc3\xa9"), "%C3%A9");
}

}  // namespace
}  // namespace eipgate::aws
