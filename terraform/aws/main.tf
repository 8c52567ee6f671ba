# LabLink client VMs on EC2: one GPU instance per name in var.vm_names, each booting the
# client container whose agent registers with the allocator using its own token.

data "aws_vpc" "default" {
  default = true
}

resource "aws_security_group" "clients" {
  name_prefix = "${var.deployment}-clients-"
  description = "LabLink client VMs: outbound only, SSH only from the listed networks"
  vpc_id      = var.subnet_id == "" ? data.aws_vpc.default.id : null

  dynamic "ingress" {
    for_each = length(var.ssh_cidr_blocks) > 0 ? [1] : []
    content {
      description = "SSH from the listed networks"
      from_port   = 22
      to_port     = 22
      protocol    = "tcp"
      cidr_blocks = var.ssh_cidr_blocks
    }
  }

  egress {
    description = "Everything out (allocator, container registry, Chrome Remote Desktop)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_iam_role" "clients" {
  name_prefix = "${var.deployment}-clients-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# Attaches the policy to this role only; other roles keep their attachments (an
# aws_iam_policy_attachment would claim the policy exclusively and detach it elsewhere).
resource "aws_iam_role_policy_attachment" "cloudwatch_agent" {
  role       = aws_iam_role.clients.name
  policy_arn = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
}

resource "aws_iam_instance_profile" "clients" {
  name_prefix = "${var.deployment}-clients-"
  role        = aws_iam_role.clients.name
}

resource "aws_instance" "vm" {
  for_each = var.vm_names

  ami                    = lookup(lookup(var.vm_settings, each.key, {}), "ami_id", var.ami_id)
  instance_type          = lookup(lookup(var.vm_settings, each.key, {}), "instance_type", var.instance_type)
  subnet_id              = var.subnet_id == "" ? null : var.subnet_id
  vpc_security_group_ids = [aws_security_group.clients.id]
  iam_instance_profile   = aws_iam_instance_profile.clients.name
  key_name               = var.key_name == "" ? null : var.key_name

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    volume_size = var.root_volume_gb
    volume_type = "gp3"
    encrypted   = true
  }

  user_data = templatefile("${path.module}/user_data.sh.tpl", {
    vm_name          = each.key
    vm_token         = lookup(var.vm_tokens, each.key, "")
    allocator_url    = var.allocator_url
    client_image     = var.client_image
    repository       = var.repository
    subject_software = var.subject_software
    gpu              = var.gpu
  })

  tags = {
    Name = each.key
  }

  lifecycle {
    # The token is only handed to VMs being created; adding or removing other VMs must not
    # touch a running one.
    ignore_changes = [user_data]
  }
}
