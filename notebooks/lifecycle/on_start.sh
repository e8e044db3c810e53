#!/bin/bash
# trainstack notebook lifecycle: runs as root at every notebook start.
# 1. Writes the platform's resource names where notebook code reads them.
# 2. Installs the idle auto-stop job.
set -euo pipefail

cat > /home/ec2-user/SageMaker/trainstack.json <<'TRAINSTACK_JSON'
__RESOURCES_JSON__
TRAINSTACK_JSON
chown ec2-user:ec2-user /home/ec2-user/SageMaker/trainstack.json

base64 -d > /usr/local/bin/trainstack-autostop.py <<'TRAINSTACK_AUTOSTOP'
__AUTOSTOP_B64__
TRAINSTACK_AUTOSTOP
chmod 755 /usr/local/bin/trainstack-autostop.py
echo "*/5 * * * * /usr/bin/python3 /usr/local/bin/trainstack-autostop.py --idle-minutes __IDLE_MINUTES__ >> /var/log/trainstack-autostop.log 2>&1" | crontab -
