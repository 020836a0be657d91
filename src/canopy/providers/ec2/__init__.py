"""The `ec2` driver: Amazon EC2 (or an EC2-compatible emulator) through boto3."""
