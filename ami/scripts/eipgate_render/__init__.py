"""eipgate-render-config as a package (ami/scripts/eipgate-render-config is its entry point):

  spec.py          the spec's keys and tags; user data and tags -> one dict
  imds.py          IMDSv2 client, the instance's facts and tags, sysfs (NIC names, PCI, vfio)
  grammar.py       durations, booleans, IPv4 addresses and prefixes, "did you mean": the grammar
                   of every eipgate config file (common/README.md), as the C++ loaders read it
  validation.py    every problem of a merged spec, at once
  rendering.py     spec + facts -> the YAML config (PyYAML) and eipgate-setup's environment
  secret_files.py  the HA secret (SSM, Secrets Manager) and atomic writes
  cli.py           the command and its exit codes
"""

from .cli import main
from .imds import Imds, local_facts, pci_address, read_facts, read_tags, vfio_usable
from .rendering import HEADER, pick_data_eni, render, to_yaml
from .secret_files import fetch_secret, write_atomic
from .spec import (IPV4_PER_INTERFACE, MAX_SERVICE_IPS, ConfigError, spec_from_tags,
                   spec_from_user_data)
from .validation import validate, validate_fallback

__all__ = ["main", "Imds", "local_facts", "pci_address", "read_facts", "read_tags", "vfio_usable",
           "HEADER", "pick_data_eni", "render", "to_yaml", "fetch_secret", "write_atomic",
           "IPV4_PER_INTERFACE", "MAX_SERVICE_IPS", "ConfigError", "spec_from_tags", "spec_from_user_data", "validate", "validate_fallback"]
