from unframe.cli.main import main

main()
