import os
import sys

from mtl_core.cli.main import main

status = main()
if "LOCAL_RANK" in os.environ:  # one rank under torchrun (`--nproc`, docs/SCALING.md): all is written by now;
    sys.stdout.flush()  # skip the interpreter's teardown, where a process group's native thread can abort
    sys.stderr.flush()
    os._exit(status)
sys.exit(status)
