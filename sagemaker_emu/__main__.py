from sagemaker_emu.cli import main

raise SystemExit(main())
