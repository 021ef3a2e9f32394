#!/usr/bin/env bash
# Protocol fidelity of fake_aws.py: the real AWS CLI (Debian's awscli, botocore's EC2 parser and
# SigV4 signer) pointed at it must read its responses, get typed errors, and be refused with a
# bad secret. Loopback only; dummy credentials; IMDS lookups by the CLI disabled.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
AWS=${AWS_CLI:-/usr/bin/aws}
WORK=$(mktemp -d /tmp/eipgate-awscli-XXXXXX)
PID=""
cleanup() {
  if [[ -n ${PID} ]]; then kill "${PID}" 2>/dev/null || true; wait "${PID}" 2>/dev/null || true; fi
  rm -rf "${WORK}"
}
trap cleanup EXIT

"${PYTHON}" "${HERE}/fake_aws.py" --state "${HERE}/example_state.json" --port 0 \
  --port-file "${WORK}/port" --changes-log "${WORK}/changes.jsonl" >"${WORK}/fake.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
  [[ -s ${WORK}/port ]] && break
  kill -0 "${PID}" 2>/dev/null || { cat "${WORK}/fake.log"; echo "fake_aws.py exited"; exit 1; }
  sleep 0.1
done
[[ -s ${WORK}/port ]] || { echo "fake_aws.py did not start"; exit 1; }
PORT=$(cat "${WORK}/port")

export AWS_ACCESS_KEY_ID=AKIDEXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=""
unset AWS_PROFILE AWS_SESSION_TOKEN
ec2() { "${AWS}" --endpoint-url "http://127.0.0.1:${PORT}" --output json ec2 "$@"; }

failures=0
check() {  # check NAME EXPECTED ACTUAL
  if [[ $2 == "$3" ]]; then
    echo "ok   $1"
  else
    echo "FAIL $1: expected '$2', got '$3'"
    failures=$((failures + 1))
  fi
}
# expect_error NAME CODE command...: the CLI must fail and name the EC2 error code.
expect_error() {
  local name=$1 code=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    check "${name}" "error ${code}" "success"
  elif [[ ${out} == *"(${code})"* ]]; then
    check "${name}" "${code}" "${code}"
  else
    check "${name}" "error ${code}" "${out//$'\n'/ }"
  fi
}

RTB1=rtb-0aa00000000000001
ENI_A=eni-0aaaaaaaaaaaaaad1
ENI_B=eni-0bbbbbbbbbbbbbbd2

check "describe-route-tables by tag" "rtb-0aa00000000000001 rtb-0aa00000000000002" \
  "$(ec2 describe-route-tables --filters Name=tag:eipgate:az,Values=use1-az1 \
       --query 'RouteTables[].RouteTableId' --output text | tr '\t' ' ')"
check "describe-route-tables route target" "${ENI_A}" \
  "$(ec2 describe-route-tables --route-table-ids ${RTB1} \
       --query "RouteTables[0].Routes[?DestinationCidrBlock=='0.0.0.0/0'].NetworkInterfaceId" --output text)"
check "describe-route-tables association" "subnet-private-a1" \
  "$(ec2 describe-route-tables --route-table-ids ${RTB1} \
       --query 'RouteTables[0].Associations[0].SubnetId' --output text)"
check "describe-route-tables tags" "private-a1" \
  "$(ec2 describe-route-tables --route-table-ids ${RTB1} \
       --query "RouteTables[0].Tags[?Key=='Name'].Value" --output text)"

ec2 replace-route --route-table-id ${RTB1} --destination-cidr-block 0.0.0.0/0 \
  --network-interface-id ${ENI_B} >/dev/null
check "replace-route applied" "${ENI_B}" \
  "$(ec2 describe-route-tables --route-table-ids ${RTB1} \
       --query "RouteTables[0].Routes[?DestinationCidrBlock=='0.0.0.0/0'].NetworkInterfaceId" --output text)"
check "replace-route reported to the change hook" "ReplaceRoute ${RTB1} ${ENI_B}" \
  "$("${PYTHON}" -c 'import json,sys; c=json.loads(open(sys.argv[1]).readlines()[-1]); print(c["action"], c["route_table_id"], c["new"]["network_interface_id"])' "${WORK}/changes.jsonl")"
expect_error "replace-route unknown table" InvalidRouteTableID.NotFound \
  ec2 replace-route --route-table-id rtb-0ff00000000000009 --destination-cidr-block 0.0.0.0/0 \
  --network-interface-id ${ENI_B}
expect_error "replace-route unknown route" InvalidRoute.NotFound \
  ec2 replace-route --route-table-id ${RTB1} --destination-cidr-block 192.0.2.0/24 \
  --network-interface-id ${ENI_B}

check "describe-network-interfaces secondary IP + EIP" "10.0.0.100 203.0.113.10" \
  "$(ec2 describe-network-interfaces --network-interface-ids ${ENI_A} \
       --query 'NetworkInterfaces[0].PrivateIpAddresses[?Primary==`false`].[PrivateIpAddress,Association.PublicIp]' \
       --output text | tr '\t' ' ')"
check "describe-network-interfaces filter + attachment" "i-0bbbbbbbbbbbbbbb2 1 False" \
  "$(ec2 describe-network-interfaces --filters Name=tag:eipgate:role,Values=data \
       Name=attachment.instance-id,Values=i-0bbbbbbbbbbbbbbb2 \
       --query 'NetworkInterfaces[0].[Attachment.InstanceId,Attachment.DeviceIndex,SourceDestCheck]' \
       --output text | tr '\t' ' ')"

expect_error "assign-private-ip-addresses in use" PrivateIpAddressInUse \
  ec2 assign-private-ip-addresses --network-interface-id ${ENI_B} --private-ip-addresses 10.0.0.100
ec2 assign-private-ip-addresses --network-interface-id ${ENI_B} --private-ip-addresses 10.0.0.100 \
  --allow-reassignment >/dev/null
check "assign-private-ip-addresses moved the IP and its EIP" "${ENI_B} 10.0.0.100" \
  "$(ec2 describe-addresses --public-ips 203.0.113.10 \
       --query 'Addresses[0].[NetworkInterfaceId,PrivateIpAddress]' --output text | tr '\t' ' ')"

expect_error "associate-address already associated" Resource.AlreadyAssociated \
  ec2 associate-address --allocation-id eipalloc-0aa00000000000001 \
  --network-interface-id ${ENI_A} --private-ip-address 10.0.0.5
ASSOC=$(ec2 associate-address --allocation-id eipalloc-0aa00000000000001 \
  --network-interface-id ${ENI_A} --private-ip-address 10.0.0.5 --allow-reassociation \
  --query AssociationId --output text)
check "associate-address returns an association id" "eipassoc-" "${ASSOC:0:9}"
check "describe-addresses after associate" "${ASSOC} ${ENI_A} i-0aaaaaaaaaaaaaaa1" \
  "$(ec2 describe-addresses --allocation-ids eipalloc-0aa00000000000001 \
       --query 'Addresses[0].[AssociationId,NetworkInterfaceId,InstanceId]' --output text | tr '\t' ' ')"
expect_error "associate-address unknown allocation" InvalidAllocationID.NotFound \
  ec2 associate-address --allocation-id eipalloc-0ff00000000000009 --network-interface-id ${ENI_A}

check "describe-instance-status" "running ok ok" \
  "$(ec2 describe-instance-status --instance-ids i-0aaaaaaaaaaaaaaa1 --include-all-instances \
       --query 'InstanceStatuses[0].[InstanceState.Name,InstanceStatus.Status,SystemStatus.Status]' \
       --output text | tr '\t' ' ')"

# Faults from the control endpoint, as the CLI sees them (its own retries disabled).
curl -fsS -X POST -d '{"throttle_next": 1}' "http://127.0.0.1:${PORT}/_fake/faults" >/dev/null
expect_error "throttling" RequestLimitExceeded \
  env AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard "${AWS}" --endpoint-url "http://127.0.0.1:${PORT}" \
  ec2 describe-route-tables
curl -fsS -X POST -d '{"fail_next": 1, "fail_status": 500, "fail_code": "InternalError"}' \
  "http://127.0.0.1:${PORT}/_fake/faults" >/dev/null
expect_error "server error" InternalError \
  env AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard "${AWS}" --endpoint-url "http://127.0.0.1:${PORT}" \
  ec2 describe-route-tables

expect_error "bad secret" AuthFailure \
  env AWS_SECRET_ACCESS_KEY=wrong "${AWS}" --endpoint-url "http://127.0.0.1:${PORT}" \
  ec2 describe-route-tables
expect_error "session token required for temporary keys" AuthFailure \
  env AWS_ACCESS_KEY_ID=ASIATEMPEXAMPLE AWS_SECRET_ACCESS_KEY=temp/secret+key= \
  "${AWS}" --endpoint-url "http://127.0.0.1:${PORT}" ec2 describe-route-tables
check "temporary keys with their session token" "3" \
  "$(AWS_ACCESS_KEY_ID=ASIATEMPEXAMPLE AWS_SECRET_ACCESS_KEY=temp/secret+key= \
     AWS_SESSION_TOKEN=FQoGZXIvYXdzEXAMPLETOKEN/+= \
     "${AWS}" --endpoint-url "http://127.0.0.1:${PORT}" ec2 describe-route-tables \
       --query 'length(RouteTables)' --output text)"

# IMDSv2 as curl (and the SDKs) use it: token first, token required.
BASE="http://127.0.0.1:${PORT}/i-0aaaaaaaaaaaaaaa1/latest"
TOKEN=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "${BASE}/api/token")
check "imds instance-id" "i-0aaaaaaaaaaaaaaa1" \
  "$(curl -fsS -H "X-aws-ec2-metadata-token: ${TOKEN}" "${BASE}/meta-data/instance-id")"
check "imds without token" "401" \
  "$(curl -s -o /dev/null -w '%{http_code}' "${BASE}/meta-data/instance-id")"
check "imds token via X-Forwarded-For refused" "403" \
  "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'X-Forwarded-For: 1.2.3.4' \
       -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "${BASE}/api/token")"

if ((failures > 0)); then
  echo "${failures} check(s) failed; fake_aws log:"
  cat "${WORK}/fake.log"
  exit 1
fi
echo "all AWS CLI fidelity checks passed"
