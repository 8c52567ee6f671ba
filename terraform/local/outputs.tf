output "vm_names" {
  description = "Hostnames of the VMs that exist."
  value       = sort(keys(terraform_data.vm))
}

output "vm_instance_ids" {
  description = "An identifier per VM (here the pid file; on AWS the instance id), by hostname."
  value       = { for name, vm in terraform_data.vm : name => vm.input.pid_file }
}
