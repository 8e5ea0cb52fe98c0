-- Demo schema of seed 004 (OpenEdge's Sports database, multi-tenant): run by the operator.
CREATE TABLE IF NOT EXISTS public.state (
  code   text PRIMARY KEY,
  name   text NOT NULL,
  region text
);
INSERT INTO public.state (code, name, region) VALUES
  ('GA', 'Georgia', 'South'), ('NC', 'North Carolina', 'South'), ('MA', 'Massachusetts', 'East'),
  ('NY', 'New York', 'East'), ('AK', 'Alaska', 'West'), ('AZ', 'Arizona', 'West')
ON CONFLICT (code) DO NOTHING;

CREATE TABLE IF NOT EXISTS public.customer (
  tenant_id integer NOT NULL,
  cust_num  bigint NOT NULL DEFAULT tenantry.next('custnum'),
  name      text NOT NULL,
  city      text,
  state     text REFERENCES public.state (code),
  PRIMARY KEY (tenant_id, cust_num)
);

CREATE TABLE IF NOT EXISTS public."order" (
  tenant_id  integer NOT NULL,
  order_num  integer NOT NULL,
  cust_num   bigint NOT NULL,
  order_date date NOT NULL DEFAULT current_date,
  status     text NOT NULL DEFAULT 'Ordered',
  PRIMARY KEY (tenant_id, order_num),
  FOREIGN KEY (tenant_id, cust_num) REFERENCES public.customer (tenant_id, cust_num)
);

CREATE TABLE IF NOT EXISTS public.item (
  tenant_id integer NOT NULL,
  item_num  integer NOT NULL,
  item_name text NOT NULL,
  price     numeric(10, 2),
  PRIMARY KEY (tenant_id, item_num)
);

-- Seed 002's table, served by the HTTP API's /v1/internal/users.
CREATE TABLE IF NOT EXISTS public.users (
  tenant_id  integer NOT NULL,
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
