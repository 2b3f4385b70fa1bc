-- bench/cache.sh: one primary-key write, keys drawn from the same Zipf distribution as
-- read.sql (hot accounts are also the most written). Weighted 1 against read.sql's 9.
\set aid random_zipfian(1, :naccounts, :zipf)
\set delta random(-5000, 5000)
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
