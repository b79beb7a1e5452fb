-- The car-detection pipeline (id 1) as plain data. Idempotent: safe to run again.
--   psql "$DATABASE_URL" -f seed.sql
BEGIN;

INSERT INTO pipelines (id, name, description, version, is_active)
VALUES (1, 'car-detection',
        'Decode a JPEG, resize to 640x640, normalize, base64, detect cars, save the result.',
        1, true)
ON CONFLICT (id) DO NOTHING;

-- Every param written out, as the API stores a definition (tests/db/test_seed.py): a GET of
-- pipeline 1 sent back to PUT unchanged is then not a new version.
-- Only into a pipeline without steps: once pipeline 1 has been changed (other steps, fewer
-- of them), running the seed again (every `make run`, every `docker compose up`) must not
-- add the seed's steps back in.
INSERT INTO pipeline_steps (pipeline_id, position, type, params)
SELECT 1, seed.position, seed.type, seed.params::jsonb
FROM (VALUES
    (0, 'decode',    '{"color": "color", "reduce": "auto"}'),
    (1, 'resize',    '{"width": 640, "height": 640, "interpolation": "linear"}'),
    (2, 'normalize', '{"mode": "minmax_uint8"}'),
    (3, 'base64',    '{"encoding": "jpeg", "jpeg_quality": 90}'),
    (4, 'detect',    '{}'),
    (5, 'save',      '{}')
) AS seed (position, type, params)
WHERE NOT EXISTS (SELECT FROM pipeline_steps WHERE pipeline_id = 1);

INSERT INTO pipeline_versions (pipeline_id, version, snapshot)
SELECT p.id, p.version,
       jsonb_build_object(
           'name', p.name,
           'description', p.description,
           'steps', (SELECT jsonb_agg(jsonb_build_object('type', s.type, 'params', s.params)
                                      ORDER BY s.position)
                     FROM pipeline_steps s WHERE s.pipeline_id = p.id))
FROM pipelines p
WHERE p.id = 1
ON CONFLICT (pipeline_id, version) DO NOTHING;

-- Ids given by hand above must not collide with ids the sequence hands out later.
SELECT setval(pg_get_serial_sequence('pipelines', 'id'),
              GREATEST((SELECT max(id) FROM pipelines), 1));

COMMIT;
