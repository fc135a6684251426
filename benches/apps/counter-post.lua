-- wrk script for benches/apps/counter.sh: POSTs (increments) to the
-- counter example and prints the JSON summary of ../e2e/wrk-json.lua.
wrk.method = "POST"
dofile(os.getenv("WRK_JSON"))
