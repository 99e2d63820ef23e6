import sys

from xmpp_server.cli import main

sys.exit(main())
