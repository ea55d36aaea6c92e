/**
 * Starts a real Quarry node for the integration test: a free 127.0.0.1 port, a temporary
 * data dir, readiness polling, and a kill at the end.
 */
import { ChildProcess, spawn } from 'child_process';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';

export interface QuarryNode {
  baseUrl: string;
  dataDir: string;
  stop(): Promise<void>;
  log(): string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitReady(baseUrl: string, child: ChildProcess, log: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`quarry exited with ${child.exitCode} before it was ready:\n${log()}`);
    }
    try {
      const response = await fetch(`${baseUrl}/health/readyz`);
      if (response.status === 200) {
        return;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`quarry was not ready within ${timeoutMs} ms:\n${log()}`);
}

/**
 * The node runs with authentication on. Grafana's data proxy sends the datasource's Basic
 * auth settings (user = the API key's id, password = its secret) with every request; the
 * test's HTTP client does the same with these.
 */
export const API_KEY_ID = 'grafana';
export const API_KEY_SECRET = 'a-secret-for-the-grafana-datasource-0123';
export const PROXY_AUTHORIZATION = `Basic ${Buffer.from(`${API_KEY_ID}:${API_KEY_SECRET}`).toString('base64')}`;

/**
 * With `QUARRY_TLS_CERT` and `QUARRY_TLS_KEY` (PEM files) the node serves HTTPS; Node's
 * fetch trusts their CA through `NODE_EXTRA_CA_CERTS`, as Grafana's proxy would through
 * the datasource's TLS settings.
 */
const TLS_CERT = process.env.QUARRY_TLS_CERT;
const TLS_KEY = process.env.QUARRY_TLS_KEY;

function tlsConfig(): string[] {
  if (!TLS_CERT || !TLS_KEY) {
    return [];
  }
  return ['  tls:', `    cert_path: ${TLS_CERT}`, `    key_path: ${TLS_KEY}`];
}

export async function startQuarry(binary: string): Promise<QuarryNode> {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-grafana-it-'));
  const configPath = path.join(dataDir, 'node.yaml');
  fs.writeFileSync(
    configPath,
    [
      'node_id: grafana-plugin-test',
      'rest:',
      `  listen_port: ${port}`,
      ...tlsConfig(),
      `data_dir: ${path.join(dataDir, 'qdata')}`,
      'auth:',
      `  bootstrap_api_key: ${API_KEY_ID}:${API_KEY_SECRET}`,
      '',
    ].join('\n')
  );
  const child = spawn(binary, ['run', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    // The tail is enough to explain a failure.
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const baseUrl = `${TLS_CERT ? 'https' : 'http'}://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitReady(baseUrl, child, () => output, 30_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    baseUrl,
    dataDir,
    log: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const killed = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(killed);
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function postJson(url: string, body: unknown, contentType = 'application/json'): Promise<any> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': contentType, Authorization: PROXY_AUTHORIZATION },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`POST ${url} answered ${response.status}: ${text}`);
  }
  return JSON.parse(text);
}
