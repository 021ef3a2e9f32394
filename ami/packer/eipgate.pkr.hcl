# eipgate AMI: Debian 12 (bookworm) + the eipgate .deb, for x86_64 and arm64 (Graviton).
# Provisioned by ami/scripts/provision.sh, the same script the local image test runs.
#
#   cd ami/packer
#   packer validate -var deb_amd64=../../build-pkg/eipgate_0.1.0-1_amd64.deb .
#   packer build -var deb_amd64=... -var deb_arm64=... .          # both architectures
#   packer build -only=amazon-ebs.amd64 -var deb_amd64=... .      # one
#
# Packer >= 1.7 with the external amazon plugin: `packer plugins install github.com/hashicorp/amazon`
# first (no required_plugins block here: Debian's packer 1.6.6 rejects it and has the builder built in).
# IMDSv2 is enforced by the launch template (HttpTokens: required), not by the AMI's imds_support
# or the builder's metadata_options, which packer 1.6.6 does not know.

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "deb_amd64" {
  type        = string
  description = "eipgate_<version>_amd64.deb (cpack in build-pkg/)"
  default     = "../../build-pkg/eipgate_0.1.0-1_amd64.deb"
}

variable "deb_arm64" {
  type        = string
  description = "eipgate_<version>_arm64.deb: ami/cross/build-deb.sh (cross-built on x86_64) or cpack on arm64"
  default     = "../../build-arm64/eipgate_0.1.0-1_arm64.deb"
}

variable "instance_type_amd64" {
  type    = string
  default = "c6i.large"
}

variable "instance_type_arm64" {
  type    = string
  default = "c7g.large"
}

variable "ami_prefix" {
  type    = string
  default = "eipgate"
}

variable "version" {
  type    = string
  default = "0.1.0"
}

variable "ami_users" {
  type        = list(string)
  description = "account ids the AMI is shared with"
  default     = []
}

variable "subnet_id" {
  type        = string
  description = "builder subnet (must reach deb.debian.org); empty = default VPC"
  default     = ""
}

locals {
  stamp = formatdate("YYYYMMDDhhmmss", timestamp())
  tags = {
    "eipgate:version" = var.version
    "eipgate:built"   = local.stamp
    "eipgate:base"    = "debian-12"
  }
}

# Official Debian 12 AMIs (owner 136693071363: Debian cloud team).
source "amazon-ebs" "amd64" {
  region        = var.region
  instance_type = var.instance_type_amd64
  subnet_id     = var.subnet_id
  ssh_username  = "admin"
  ami_name      = "${var.ami_prefix}-${var.version}-debian12-amd64-${local.stamp}"
  ami_users     = var.ami_users
  ena_support   = true
  sriov_support = true
  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["136693071363"]
    most_recent = true
  }
  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 8
    volume_type           = "gp3"
    throughput            = 125
    iops                  = 3000
    delete_on_termination = true
    encrypted             = true
  }
  tags          = merge(local.tags, { "eipgate:arch" = "amd64" })
  snapshot_tags = local.tags
}

source "amazon-ebs" "arm64" {
  region        = var.region
  instance_type = var.instance_type_arm64
  subnet_id     = var.subnet_id
  ssh_username  = "admin"
  ami_name      = "${var.ami_prefix}-${var.version}-debian12-arm64-${local.stamp}"
  ami_users     = var.ami_users
  ena_support   = true
  source_ami_filter {
    filters = {
      name                = "debian-12-arm64-*"
      architecture        = "arm64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["136693071363"]
    most_recent = true
  }
  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 8
    volume_type           = "gp3"
    throughput            = 125
    iops                  = 3000
    delete_on_termination = true
    encrypted             = true
  }
  tags          = merge(local.tags, { "eipgate:arch" = "arm64" })
  snapshot_tags = local.tags
}

build {
  sources = ["source.amazon-ebs.amd64", "source.amazon-ebs.arm64"]

  provisioner "file" {
    source      = "../scripts/provision.sh"
    destination = "/tmp/provision.sh"
  }

  provisioner "file" {
    only        = ["amazon-ebs.amd64"]
    source      = var.deb_amd64
    destination = "/tmp/eipgate.deb"
  }

  provisioner "file" {
    only        = ["amazon-ebs.arm64"]
    source      = var.deb_arm64
    destination = "/tmp/eipgate.deb"
  }

  provisioner "shell" {
    execute_command = "sudo -E bash '{{ .Path }}'"
    inline          = ["bash /tmp/provision.sh /tmp/eipgate.deb", "rm -f /tmp/provision.sh /tmp/eipgate.deb"]
  }

  post-processor "manifest" {
    output     = "manifest.json"
    strip_path = true
  }
}
