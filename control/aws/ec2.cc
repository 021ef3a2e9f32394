// EC2 Query API client: request encoding, SigV4 via the transport, pugixml response parsing.
#include "control/aws/ec2.h"

#include <chrono>
#include <pugixml.hpp>

#include "common/log.h"
#include "control/aws/error.h"

namespace eipgate::aws {
namespace {

constexpr std::string_view kApiVersion = "2016-11-15";
constexpr int kMaxPages = 100;  // a runaway nextToken loop is a bug, not a big account

using Params = std::vector<std::pair<std::string, std::string>>;

// Parses a response and checks its root element (namespaces are ignored by pugixml's names).
pugi::xml_node load(pugi::xml_document& doc, std::string_view xml, std::string_view root) {
  const auto result = doc.load_buffer(xml.data(), xml.size());
  if (!result) {
    throw AwsError(
        ErrorKind::Protocol, "MalformedXml",
        std::string(root) + ": " + result.description() + " in '" + body_excerpt(xml) + "'");
  }
  pugi::xml_node node = doc.document_element();
  if (std::string_view(node.name()) != root) {
    throw AwsError(ErrorKind::Protocol, "UnexpectedXml",
                   "expected <" + std::string(root) + ">, got <" + node.name() + ">");
  }
  return node;
}

std::string text(const pugi::xml_node& node, const char* child) {
  return node.child(child).text().as_string();
}

bool flag(const pugi::xml_node& node, const char* child, bool fallback) {
  const auto c = node.child(child);
  return c ? std::string_view(c.text().as_string()) == "true" : fallback;
}

Tags tags_of(const pugi::xml_node& node) {
  Tags tags;
  for (const auto& item : node.child("tagSet").children("item")) {
    tags[text(item, "key")] = text(item, "value");
  }
  return tags;
}

void add_list(Params& params, const std::string& prefix, const std::vector<std::string>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    params.emplace_back(prefix + "." + std::to_string(i + 1), values[i]);
  }
}

void add_filters(Params& params, const std::vector<Filter>& filters) {
  for (size_t i = 0; i < filters.size(); ++i) {
    const std::string p = "Filter." + std::to_string(i + 1);
    params.emplace_back(p + ".Name", filters[i].name);
    add_list(params, p + ".Value", filters[i].values);
  }
}

}  // namespace

const Route* RouteTable::route_to(std::string_view destination_cidr) const {
  for (const auto& r : routes) {
    if (r.destination_cidr == destination_cidr) return &r;
  }
  return nullptr;
}

std::string encode_query(std::string_view action, const Params& params) {
  std::string body = "Action=" + url_encode(action) + "&Version=" + std::string(kApiVersion);
  for (const auto& [k, v] : params) {
    body += '&';
    body += url_encode(k);
    body += '=';
    body += url_encode(v);
  }
  return body;
}

AwsError parse_error_response(std::string_view xml, long http_status) {
  pugi::xml_document doc;
  if (doc.load_buffer(xml.data(), xml.size())) {
    const auto root = doc.document_element();
    const auto error = root.child("Errors").child("Error");
    if (std::string_view(root.name()) == "Response" && error) {
      std::string code = text(error, "Code");
      std::string request_id = text(root, "RequestID");
      if (request_id.empty()) request_id = text(root, "RequestId");
      const ErrorKind kind = classify_error(code, http_status);
      return AwsError(kind, std::move(code), text(error, "Message"), http_status,
                      std::move(request_id));
    }
  }
  ErrorKind kind = classify_error("", http_status);
  if (kind == ErrorKind::Other) kind = ErrorKind::Protocol;
  return AwsError(kind, "Http" + std::to_string(http_status),
                  "response without an EC2 error document: '" + body_excerpt(xml) + "'",
                  http_status);
}

std::string parse_next_token(std::string_view xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return {};
  return text(doc.document_element(), "nextToken");
}

void parse_return_true(std::string_view xml, std::string_view action) {
  pugi::xml_document doc;
  const auto root = load(doc, xml, std::string(action) + "Response");
  if (std::string_view(root.child("return").text().as_string()) != "true") {
    throw AwsError(ErrorKind::Protocol, "ReturnFalse",
                   std::string(action) + " returned false: '" + body_excerpt(xml) + "'");
  }
}

std::vector<RouteTable> parse_describe_route_tables(std::string_view xml) {
  pugi::xml_document doc;
  const auto root = load(doc, xml, "DescribeRouteTablesResponse");
  std::vector<RouteTable> out;
  for (const auto& item : root.child("routeTableSet").children("item")) {
    RouteTable rt;
    rt.id = text(item, "routeTableId");
    rt.vpc_id = text(item, "vpcId");
    for (const auto& r : item.child("routeSet").children("item")) {
      Route route;
      route.destination_cidr = text(r, "destinationCidrBlock");
      route.gateway_id = text(r, "gatewayId");
      route.instance_id = text(r, "instanceId");
      route.network_interface_id = text(r, "networkInterfaceId");
      route.nat_gateway_id = text(r, "natGatewayId");
      route.state = text(r, "state");
      route.origin = text(r, "origin");
      rt.routes.push_back(std::move(route));
    }
    for (const auto& a : item.child("associationSet").children("item")) {
      rt.associations.push_back(RouteTableAssociation{text(a, "routeTableAssociationId"),
                                                      text(a, "subnetId"), flag(a, "main", false)});
    }
    rt.tags = tags_of(item);
    out.push_back(std::move(rt));
  }
  return out;
}

std::vector<Address> parse_describe_addresses(std::string_view xml) {
  pugi::xml_document doc;
  const auto root = load(doc, xml, "DescribeAddressesResponse");
  std::vector<Address> out;
  for (const auto& item : root.child("addressesSet").children("item")) {
    Address a;
    a.public_ip = text(item, "publicIp");
    a.allocation_id = text(item, "allocationId");
    a.association_id = text(item, "associationId");
    a.instance_id = text(item, "instanceId");
    a.network_interface_id = text(item, "networkInterfaceId");
    a.private_ip = text(item, "privateIpAddress");
    a.tags = tags_of(item);
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<NetworkInterface> parse_describe_network_interfaces(std::string_view xml) {
  pugi::xml_document doc;
  const auto root = load(doc, xml, "DescribeNetworkInterfacesResponse");
  std::vector<NetworkInterface> out;
  for (const auto& item : root.child("networkInterfaceSet").children("item")) {
    NetworkInterface n;
    n.id = text(item, "networkInterfaceId");
    n.subnet_id = text(item, "subnetId");
    n.vpc_id = text(item, "vpcId");
    n.availability_zone = text(item, "availabilityZone");
    n.mac = text(item, "macAddress");
    n.status = text(item, "status");
    n.private_ip = text(item, "privateIpAddress");
    n.source_dest_check = flag(item, "sourceDestCheck", true);
    if (const auto att = item.child("attachment")) {
      n.instance_id = text(att, "instanceId");
      n.device_index = att.child("deviceIndex").text().as_int(-1);
    }
    for (const auto& ip : item.child("privateIpAddressesSet").children("item")) {
      PrivateIp p;
      p.address = text(ip, "privateIpAddress");
      p.primary = flag(ip, "primary", false);
      if (const auto assoc = ip.child("association")) {
        p.public_ip = text(assoc, "publicIp");
        p.allocation_id = text(assoc, "allocationId");
      }
      n.private_ips.push_back(std::move(p));
    }
    n.tags = tags_of(item);
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<InstanceStatus> parse_describe_instance_status(std::string_view xml) {
  pugi::xml_document doc;
  const auto root = load(doc, xml, "DescribeInstanceStatusResponse");
  std::vector<InstanceStatus> out;
  for (const auto& item : root.child("instanceStatusSet").children("item")) {
    InstanceStatus s;
    s.instance_id = text(item, "instanceId");
    s.availability_zone = text(item, "availabilityZone");
    s.state_code = item.child("instanceState").child("code").text().as_int();
    s.state = text(item.child("instanceState"), "name");
    s.system_status = text(item.child("systemStatus"), "status");
    s.instance_status = text(item.child("instanceStatus"), "status");
    out.push_back(std::move(s));
  }
  return out;
}

std::string parse_associate_address(std::string_view xml) {
  pugi::xml_document doc;
  const auto root = load(doc, xml, "AssociateAddressResponse");
  std::string id = text(root, "associationId");
  if (id.empty()) {
    throw AwsError(ErrorKind::Protocol, "MissingAssociationId",
                   "AssociateAddress response without associationId");
  }
  return id;
}

std::vector<std::string> parse_assign_private_ip_addresses(std::string_view xml) {
  pugi::xml_document doc;
  const auto root = load(doc, xml, "AssignPrivateIpAddressesResponse");
  if (const auto ret = root.child("return");
      ret && std::string_view(ret.text().as_string()) != "true") {
    throw AwsError(ErrorKind::Protocol, "ReturnFalse", "AssignPrivateIpAddresses returned false");
  }
  std::vector<std::string> out;
  for (const auto& item : root.child("assignedPrivateIpAddressesSet").children("item")) {
    out.push_back(text(item, "privateIpAddress"));
  }
  return out;
}

Ec2Client::Ec2Client(HttpTransport& http, CredentialsProvider& credentials, Ec2Options options,
                     RetryEnv env)
    : ServiceClient(http, credentials, std::move(options),
                    ServiceSpec{"ec2", "ec2", "EC2", /*has_dual_stack=*/true}, std::move(env)) {}

std::string Ec2Client::call(std::string_view action, const Params& params) {
  const std::string body = encode_query(action, params);
  return run("ec2:" + std::string(action), [&](Credentials* used) {
    HttpResponse resp = post(
        action, {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}}, body, used);
    if (resp.status >= 200 && resp.status < 300) return std::move(resp.body);
    throw parse_error_response(resp.body, resp.status);
  });
}

std::vector<std::string> Ec2Client::call_paged(std::string_view action, const Params& params) {
  std::vector<std::string> pages;
  std::string next;
  for (int page = 0; page < kMaxPages; ++page) {
    Params p = params;
    if (!next.empty()) p.emplace_back("NextToken", next);
    pages.push_back(call(action, p));
    next = parse_next_token(pages.back());
    if (next.empty()) return pages;
  }
  throw AwsError(ErrorKind::Protocol, "TooManyPages",
                 std::string(action) + ": more than " + std::to_string(kMaxPages) + " pages");
}

void Ec2Client::replace_route(const std::string& route_table_id,
                              const std::string& destination_cidr,
                              const std::string& network_interface_id) {
  parse_return_true(call("ReplaceRoute", {{"RouteTableId", route_table_id},
                                          {"DestinationCidrBlock", destination_cidr},
                                          {"NetworkInterfaceId", network_interface_id}}),
                    "ReplaceRoute");
}

void Ec2Client::replace_route_to_nat_gateway(const std::string& route_table_id,
                                             const std::string& destination_cidr,
                                             const std::string& nat_gateway_id) {
  parse_return_true(call("ReplaceRoute", {{"RouteTableId", route_table_id},
                                          {"DestinationCidrBlock", destination_cidr},
                                          {"NatGatewayId", nat_gateway_id}}),
                    "ReplaceRoute");
}

void Ec2Client::create_tags(const std::vector<std::string>& resource_ids, const Tags& tags) {
  Params params;
  add_list(params, "ResourceId", resource_ids);
  size_t n = 0;
  for (const auto& [key, value] : tags) {
    ++n;
    params.emplace_back("Tag." + std::to_string(n) + ".Key", key);
    params.emplace_back("Tag." + std::to_string(n) + ".Value", value);
  }
  parse_return_true(call("CreateTags", params), "CreateTags");
}

std::vector<RouteTable> Ec2Client::describe_route_tables(const std::vector<std::string>& ids,
                                                         const std::vector<Filter>& filters) {
  Params params;
  add_list(params, "RouteTableId", ids);
  add_filters(params, filters);
  std::vector<RouteTable> out;
  for (const auto& page : call_paged("DescribeRouteTables", params)) {
    auto part = parse_describe_route_tables(page);
    out.insert(out.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }
  return out;
}

std::string Ec2Client::associate_address(const std::string& allocation_id,
                                         const std::string& network_interface_id,
                                         const std::string& private_ip, bool allow_reassociation) {
  Params params = {{"AllocationId", allocation_id}, {"NetworkInterfaceId", network_interface_id}};
  if (!private_ip.empty()) params.emplace_back("PrivateIpAddress", private_ip);
  if (allow_reassociation) params.emplace_back("AllowReassociation", "true");
  return parse_associate_address(call("AssociateAddress", params));
}

std::vector<Address> Ec2Client::describe_addresses(const std::vector<std::string>& allocation_ids,
                                                   const std::vector<Filter>& filters) {
  Params params;
  add_list(params, "AllocationId", allocation_ids);
  add_filters(params, filters);
  return parse_describe_addresses(call("DescribeAddresses", params));  // not paginated by EC2
}

std::vector<std::string> Ec2Client::assign_private_ip_addresses(
    const std::string& network_interface_id, const std::vector<std::string>& ips,
    bool allow_reassignment) {
  Params params = {{"NetworkInterfaceId", network_interface_id}};
  add_list(params, "PrivateIpAddress", ips);
  if (allow_reassignment) params.emplace_back("AllowReassignment", "true");
  return parse_assign_private_ip_addresses(call("AssignPrivateIpAddresses", params));
}

std::vector<NetworkInterface> Ec2Client::describe_network_interfaces(
    const std::vector<std::string>& ids, const std::vector<Filter>& filters) {
  Params params;
  add_list(params, "NetworkInterfaceId", ids);
  add_filters(params, filters);
  std::vector<NetworkInterface> out;
  for (const auto& page : call_paged("DescribeNetworkInterfaces", params)) {
    auto part = parse_describe_network_interfaces(page);
    out.insert(out.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }
  return out;
}

std::vector<InstanceStatus> Ec2Client::describe_instance_status(
    const std::vector<std::string>& instance_ids, bool include_all_instances) {
  Params params;
  add_list(params, "InstanceId", instance_ids);
  if (include_all_instances) params.emplace_back("IncludeAllInstances", "true");
  std::vector<InstanceStatus> out;
  for (const auto& page : call_paged("DescribeInstanceStatus", params)) {
    auto part = parse_describe_instance_status(page);
    out.insert(out.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }
  return out;
}

}  // namespace eipgate::aws
