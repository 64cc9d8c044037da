from services.api.server.program import main

main()
