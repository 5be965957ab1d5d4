from traceview.cli.app import main

main()
