"""One process serving many agencies (issue 19): the Host owns the process (servers, scheduler, signals)
and lends each agency (node.runtime.Node) what it shares. See docs/hosting.md."""
