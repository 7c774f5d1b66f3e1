from edenkit.cli import main

raise SystemExit(main())
