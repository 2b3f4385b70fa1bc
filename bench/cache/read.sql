-- bench/cache.sh: one primary-key read. The key follows a Zipf distribution over
-- 1..:naccounts with exponent :zipf (both set with pgbench -D; defaults 100000 and 1.1),
-- so a few accounts are hot and most are cold, as in a real application.
\set aid random_zipfian(1, :naccounts, :zipf)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
