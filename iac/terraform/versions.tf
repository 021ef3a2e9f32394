terraform {
  # Not run here: no terraform binary on this machine (iac/terraform/README.md).
  required_version = ">= 1.3"
  required_providers {
    # < 6: the instances attach their ENIs with network_interface blocks (deprecated in 6.x).
    # >= 5.80: aws_vpc_block_public_access_exclusion (block_public_access_exclusion).
    aws    = { source = "hashicorp/aws", version = ">= 5.80, < 6.0" }
    random = { source = "hashicorp/random", version = ">= 3.5" }
  }
}
