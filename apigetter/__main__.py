from apigetter.cli import main

main()
