// Copies the .sql files next to the compiled modules so dist/ runs on its own.
import { cpSync } from 'node:fs';
cpSync('src/sql', 'dist/src/sql', { recursive: true });
cpSync('src/demo/demo.sql', 'dist/src/demo/demo.sql');
