from dlkit.cli.main import main

main()
