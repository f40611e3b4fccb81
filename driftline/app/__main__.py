from driftline.app.cli import main

main()
