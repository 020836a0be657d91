#!/bin/sh
# Written into the server by the multipart user data of boot_configs.yaml.
set -eu
mkdir -p /etc/agent
echo "mirror=$MIRROR" > /etc/agent/agent.conf
