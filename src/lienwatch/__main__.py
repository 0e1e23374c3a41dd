from lienwatch.cli import main

main()
