from services.backup_worker.main import main

main()
