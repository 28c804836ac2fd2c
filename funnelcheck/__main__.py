from funnelcheck.cli import entry

entry()
