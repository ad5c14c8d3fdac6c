terraform {
  required_version = ">= 1.6"

  required_providers {
    tandem = {
      source  = "tandem/tandem"
      version = ">= 0.1"
    }
  }
}
