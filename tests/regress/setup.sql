--
-- Shared fixture for tests/regress, run once (directly on the primary, as postgres) in the
-- template database every test database is cloned from.
--
-- It is PostgreSQL 15's src/test/regress/sql/test_setup.sql with the data files replaced by
-- deterministic generated rows (the harness compares a direct run with a proxied run, so
-- the exact values do not matter, only that both runs see the same ones), the C functions
-- of regress.so left out (not installed here), plus the few tables of create_table.sql /
-- copy.sql that the selected tests read (aggtest).
--

SET synchronous_commit = on;
GRANT ALL ON SCHEMA public TO public;

CREATE TABLE CHAR_TBL(f1 char(4));
INSERT INTO CHAR_TBL (f1) VALUES ('a'), ('ab'), ('abcd'), ('abcd    ');
VACUUM CHAR_TBL;

CREATE TABLE FLOAT8_TBL(f1 float8);
INSERT INTO FLOAT8_TBL(f1) VALUES
  ('0.0'), ('-34.84'), ('-1004.30'), ('-1.2345678901234e+200'), ('-1.2345678901234e-200');
VACUUM FLOAT8_TBL;

CREATE TABLE INT2_TBL(f1 int2);
INSERT INTO INT2_TBL(f1) VALUES ('0   '), ('  1234 '), ('    -1234'), ('32767'), ('-32767');
VACUUM INT2_TBL;

CREATE TABLE INT4_TBL(f1 int4);
INSERT INTO INT4_TBL(f1) VALUES
  ('   0  '), ('123456     '), ('    -123456'), ('2147483647'), ('-2147483647');
VACUUM INT4_TBL;

CREATE TABLE INT8_TBL(q1 int8, q2 int8);
INSERT INTO INT8_TBL VALUES
  ('  123   ','  456'),
  ('123   ','4567890123456789'),
  ('4567890123456789','123'),
  (+4567890123456789,'4567890123456789'),
  ('+4567890123456789','-4567890123456789');
VACUUM INT8_TBL;

CREATE TABLE POINT_TBL(f1 point);
INSERT INTO POINT_TBL(f1) VALUES
  ('(0.0,0.0)'), ('(-10.0,0.0)'), ('(-3.0,4.0)'), ('(5.1, 34.5)'), ('(-5.0,-12.0)'),
  ('(1e-300,-1e-300)'), ('(1e+300,Inf)'), ('(Inf,1e+300)'), (' ( Nan , NaN ) '), ('10.0,10.0');

CREATE TABLE TEXT_TBL (f1 text);
INSERT INTO TEXT_TBL VALUES ('doh!'), ('hi de ho neighbor');
VACUUM TEXT_TBL;

CREATE TABLE VARCHAR_TBL(f1 varchar(4));
INSERT INTO VARCHAR_TBL (f1) VALUES ('a'), ('ab'), ('abcd'), ('abcd    ');
VACUUM VARCHAR_TBL;

-- onek / tenk1 as in the regression data: unique1 a permutation of 0..N-1, unique2 the
-- row number, the other columns derived from unique1 the way the data files do.
CREATE FUNCTION regress_name(n int) RETURNS name LANGUAGE sql IMMUTABLE AS $$
  SELECT (chr(65 + (n / 17576) % 26) || chr(65 + (n / 676) % 26) ||
          chr(65 + (n / 26) % 26) || chr(65 + n % 26) || 'xx')::name
$$;

CREATE TABLE onek (
	unique1		int4, unique2		int4, two			int4, four		int4,
	ten			int4, twenty		int4, hundred		int4, thousand	int4,
	twothousand	int4, fivethous	int4, tenthous	int4, odd			int4,
	even		int4, stringu1	name, stringu2	name, string4		name
);
INSERT INTO onek
  SELECT u1, i, u1 % 2, u1 % 4, u1 % 10, u1 % 20, u1 % 100, u1 % 1000, u1 % 1000,
         u1 % 1000, u1, (u1 % 100) * 2 + 1, (u1 % 100) * 2,
         regress_name(u1), regress_name(i),
         (ARRAY['AAAAxx','HHHHxx','OOOOxx','VVVVxx'])[i % 4 + 1]::name
  FROM (SELECT i, (i * 7919) % 1000 AS u1 FROM generate_series(0, 999) i) s;
VACUUM ANALYZE onek;

CREATE TABLE onek2 AS SELECT * FROM onek;
VACUUM ANALYZE onek2;

CREATE TABLE tenk1 (
	unique1		int4, unique2		int4, two			int4, four		int4,
	ten			int4, twenty		int4, hundred		int4, thousand	int4,
	twothousand	int4, fivethous	int4, tenthous	int4, odd			int4,
	even		int4, stringu1	name, stringu2	name, string4		name
);
INSERT INTO tenk1
  SELECT u1, i, u1 % 2, u1 % 4, u1 % 10, u1 % 20, u1 % 100, u1 % 1000, u1 % 2000,
         u1 % 5000, u1, (u1 % 100) * 2 + 1, (u1 % 100) * 2,
         regress_name(u1), regress_name(i),
         (ARRAY['AAAAxx','HHHHxx','OOOOxx','VVVVxx'])[i % 4 + 1]::name
  FROM (SELECT i, (i * 7919) % 10000 AS u1 FROM generate_series(0, 9999) i) s;
VACUUM ANALYZE tenk1;

CREATE TABLE tenk2 AS SELECT * FROM tenk1;
VACUUM ANALYZE tenk2;

CREATE TABLE person (name text, age int4, location point);
INSERT INTO person
  SELECT 'person' || i, 20 + i % 50, point(i, i * 2) FROM generate_series(1, 50) i;
VACUUM ANALYZE person;

CREATE TABLE emp (salary int4, manager name) INHERITS (person);
INSERT INTO emp
  SELECT 'emp' || i, 30 + i, point(i, -i), 1000 * i, 'mgr' || (i % 3)
  FROM generate_series(1, 10) i;
VACUUM ANALYZE emp;

CREATE TABLE student (gpa float8) INHERITS (person);
INSERT INTO student
  SELECT 'student' || i, 18 + i, point(-i, i), 2.5 + i / 10.0 FROM generate_series(1, 5) i;
VACUUM ANALYZE student;

CREATE TABLE stud_emp (percent int4) INHERITS (emp, student);
INSERT INTO stud_emp
  SELECT 'stud_emp' || i, 25 + i, point(i, 0), 500 * i, 'mgr1', 3.0 + i / 10.0, 10 * i
  FROM generate_series(1, 3) i;
VACUUM ANALYZE stud_emp;

CREATE TABLE road (name text, thepath path);
INSERT INTO road
  SELECT CASE WHEN i % 3 = 0 THEN 'I- ' || i WHEN i % 3 = 1 THEN 'State Hwy ' || i
              ELSE 'Street ' || i END,
         ('[(' || i || ',' || i || '),(' || (i + 1) || ',' || (i * 2) || ')]')::path
  FROM generate_series(1, 60) i;
VACUUM ANALYZE road;

CREATE TABLE ihighway () INHERITS (road);
INSERT INTO ihighway SELECT * FROM ONLY road WHERE name ~ 'I- .*';
VACUUM ANALYZE ihighway;

CREATE TABLE shighway (surface text) INHERITS (road);
INSERT INTO shighway SELECT *, 'asphalt' FROM ONLY road WHERE name ~ 'State Hwy.*';
VACUUM ANALYZE shighway;

create type stoplight as enum ('red', 'yellow', 'green');
create type float8range as range (subtype = float8, subtype_diff = float8mi);
create type textrange as range (subtype = text, collation = "C");

create function part_hashint4_noop(value int4, seed int8)
    returns int8 as $$
    select value + seed;
    $$ language sql strict immutable parallel safe;

create operator class part_test_int4_ops for type int4 using hash as
    operator 1 =,
    function 2 part_hashint4_noop(int4, int8);

create function part_hashtext_length(value text, seed int8)
    returns int8 as $$
    select length(coalesce(value, ''))::int8
    $$ language sql strict immutable parallel safe;

create operator class part_test_text_ops for type text using hash as
    operator 1 =,
    function 2 part_hashtext_length(text, int8);

-- from create_table.sql / copy.sql
CREATE TABLE aggtest (a int2, b float4);
INSERT INTO aggtest VALUES (56, 7.8), (100, 99.097), (0, 0.09561), (42, 324.78);
VACUUM ANALYZE aggtest;
