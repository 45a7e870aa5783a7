"""Vigil's host agent (agent/host_agent.py), run as ``python3 -m agent``.

The package has no Django and nothing of Vigil in it: agent/install.sh copies this folder onto a
monitored host with a systemd unit (agent/vigil-agent.service).
"""
