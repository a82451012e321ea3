"""Sub-commands of the `pianogan` CLI, one module each (see pianogan.cli)."""
