"""The HA secret (from the spec, SSM Parameter Store or Secrets Manager) and atomic file writes."""

import os
import tempfile


def fetch_secret(spec, region):
    """The HA secret's bytes, or None when the spec names no source (keep the existing file)."""
    if "ha_secret" in spec:
        return str(spec["ha_secret"]).encode()
    if "ha_secret_ssm" in spec or "ha_secret_arn" in spec:
        try:
            import botocore.session  # Debian: python3-botocore
        except ImportError:
            raise RuntimeError("the HA secret is in AWS but python3-botocore is not installed")
        session = botocore.session.get_session()
        config = None
        if spec.get("management") == "Ipv6":
            # no public IPv4: the dual-stack endpoint (<service>.<region>.api.aws) over IPv6
            from botocore.config import Config
            config = Config(use_dualstack_endpoint=True)
        if "ha_secret_ssm" in spec:
            c = session.create_client("ssm", region_name=region, config=config)
            r = c.get_parameter(Name=spec["ha_secret_ssm"], WithDecryption=True)
            return r["Parameter"]["Value"].strip().encode()
        c = session.create_client("secretsmanager", region_name=region, config=config)
        r = c.get_secret_value(SecretId=spec["ha_secret_arn"])
        return r["SecretString"].strip().encode()
    return None


def write_atomic(path, data, mode):
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".render-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
