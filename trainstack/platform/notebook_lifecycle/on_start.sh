#!/bin/bash
# trainstack notebook lifecycle: runs as root at every notebook start.
# 1. Writes the platform's resource names where notebook code reads them.
# 2. Installs the idle auto-stop job: a systemd timer (Amazon Linux 2023 has no cron by default).
set -euo pipefail

cat > /home/ec2-user/SageMaker/trainstack.json <<'TRAINSTACK_JSON'
__RESOURCES_JSON__
TRAINSTACK_JSON
chown ec2-user:ec2-user /home/ec2-user/SageMaker/trainstack.json

base64 -d > /usr/local/bin/trainstack-autostop.py <<'TRAINSTACK_AUTOSTOP'
__AUTOSTOP_B64__
TRAINSTACK_AUTOSTOP
chmod 755 /usr/local/bin/trainstack-autostop.py

cat > /etc/systemd/system/trainstack-autostop.service <<'TRAINSTACK_SERVICE'
[Unit]
Description=trainstack: stop this notebook instance when Jupyter has been idle

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 /usr/local/bin/trainstack-autostop.py --idle-minutes __IDLE_MINUTES__
TRAINSTACK_SERVICE

cat > /etc/systemd/system/trainstack-autostop.timer <<'TRAINSTACK_TIMER'
[Unit]
Description=trainstack: idle check every five minutes

[Timer]
OnBootSec=5min
OnUnitActiveSec=5min

[Install]
WantedBy=timers.target
TRAINSTACK_TIMER

systemctl daemon-reload
systemctl enable --now trainstack-autostop.timer
