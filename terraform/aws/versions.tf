terraform {
  required_version = ">= 1.4"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }

  # State: local (in the allocator's working directory) unless you add a backend here, e.g.
  #   backend "s3" { bucket = "…", key = "lablink/clients.tfstate", region = "…" }
  # or PostgreSQL's built-in backend in LabLink's own database:
  #   backend "pg" { conn_str = "postgres://…" }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ "lablink:deployment" = var.deployment }, var.tags)
  }
}
