from agent.host_agent import main

raise SystemExit(main())
