from services.reporter.main import main

main()
