output "vm_names" {
  description = "Hostnames of the VMs that exist."
  value       = sort(keys(aws_instance.vm))
}

output "vm_instance_ids" {
  description = "EC2 instance id of each VM, by hostname."
  value       = { for name, vm in aws_instance.vm : name => vm.id }
}

output "vm_public_ips" {
  description = "Public IP of each VM, by hostname."
  value       = { for name, vm in aws_instance.vm : name => vm.public_ip }
}
