/**
 * Test harness: real `redis-server` (and `redis-server --sentinel`) processes on free loopback
 * ports, owned by a Scope. Readiness is the server's own "Ready to accept connections" log line
 * (or the sentinel's "+monitor"), never a sleep. Shared by every package's tests and the bench.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type { Scope } from "effect"
import { Data, Deferred, Effect, Exit } from "effect"

export class HarnessError extends Data.TaggedError("HarnessError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** A free TCP port on 127.0.0.1 (the OS picks; we release it right away). */
export const freePort: Effect.Effect<number, HarnessError> = Effect.async<number, HarnessError>((resume) => {
  const server = Net.createServer()
  server.unref()
  server.on("error", (cause) => resume(Effect.fail(new HarnessError({ message: "freePort", cause }))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A fresh temporary directory removed when the scope closes. */
export const tempDir = (prefix = "effect-celery-"): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

export interface ProcessOptions {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** A line (substring) on stdout that says the process is ready. */
  readonly readyLine: string
  readonly name: string
  readonly cwd?: string
  readonly readyTimeout?: number
}

export interface ServerProcess {
  readonly pid: () => number | undefined
  /** Every stdout line so far (for diagnostics and waiting on log events). */
  readonly output: () => string
  /** Wait until a line containing `text` appears (from now or already seen when `seen`). */
  readonly waitForLine: (
    text: string,
    options?: { readonly timeoutMillis?: number; readonly after?: number }
  ) => Effect.Effect<void, HarnessError>
  /** SIGKILL the process and wait for it to exit. */
  readonly kill: Effect.Effect<void>
  /** Start the same command again (same port and files) and wait until ready. */
  readonly restart: Effect.Effect<void, HarnessError>
  readonly isRunning: () => boolean
}

/** Spawn a long-running process, wait for its ready line; killed when the scope closes. */
export const spawn = (options: ProcessOptions): Effect.Effect<ServerProcess, HarnessError, Scope.Scope> =>
  Effect.gen(function* () {
    let child: ChildProcess.ChildProcess | undefined
    let out = ""
    let exited: Deferred.Deferred<void> | undefined
    const waiters = new Set<{ text: string; from: number; done: () => void }>()

    const check = () => {
      for (const w of waiters) {
        if (out.indexOf(w.text, w.from) !== -1) {
          waiters.delete(w)
          w.done()
        }
      }
    }

    const waitForLine = (text: string, o?: { readonly timeoutMillis?: number; readonly after?: number }) =>
      Effect.async<void>((resume) => {
        const w = { text, from: o?.after ?? 0, done: () => resume(Effect.void) }
        waiters.add(w)
        check()
        return Effect.sync(() => waiters.delete(w))
      }).pipe(
        Effect.timeoutFail({
          duration: o?.timeoutMillis ?? 20_000,
          onTimeout: () =>
            new HarnessError({ message: `${options.name}: no "${text}" in output:\n${out.slice(-3000)}` })
        })
      )

    const start = Effect.gen(function* () {
      const from = out.length
      const done = yield* Deferred.make<void>()
      exited = done
      const proc = ChildProcess.spawn(options.command, [...options.args], {
        cwd: options.cwd,
        stdio: ["ignore", "pipe", "pipe"]
      })
      child = proc
      proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk
        check()
      })
      proc.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk
        check()
      })
      proc.on("error", (cause) => {
        out += `\n[spawn error] ${String(cause)}\n`
        check()
        Deferred.unsafeDone(done, Exit.void)
      })
      // "close" comes after the last stdout/stderr chunk, so the exit line ends the output.
      proc.on("close", (code, signal) => {
        out += `\n[exited code=${code} signal=${signal}]\n`
        check()
        Deferred.unsafeDone(done, Exit.void)
      })
      yield* waitForLine(options.readyLine, { after: from, timeoutMillis: options.readyTimeout ?? 20_000 }).pipe(
        Effect.raceFirst(
          Deferred.await(done).pipe(
            Effect.zipRight(
              Effect.fail(new HarnessError({ message: `${options.name} exited before ready:\n${out.slice(-3000)}` }))
            )
          )
        )
      )
    })

    const kill = Effect.suspend(() => {
      const proc = child
      const done = exited
      if (proc === undefined || done === undefined || proc.exitCode !== null || proc.signalCode !== null)
        return Effect.void
      proc.kill("SIGKILL")
      // Bounded: a process stuck in the kernel must not hang the test's scope.
      return Deferred.await(done).pipe(Effect.interruptible, Effect.timeoutOption(10_000), Effect.asVoid)
    })

    yield* Effect.addFinalizer(() => kill)
    yield* start

    return {
      pid: () => child?.pid,
      output: () => out,
      waitForLine,
      kill,
      restart: Effect.zipRight(kill, start),
      isRunning: () => child !== undefined && child.exitCode === null && child.signalCode === null
    } satisfies ServerProcess
  })

export interface RedisServerOptions {
  /** Extra `redis-server` arguments, e.g. `["--requirepass", "pw"]`. */
  readonly args?: ReadonlyArray<string>
  /** Also listen on a unix socket in the server's directory. */
  readonly unixSocket?: boolean
  /** TLS: serve TLS on the port (plain TCP disabled) with these files. */
  readonly tls?: {
    readonly cert: string
    readonly key: string
    readonly ca: string
    readonly authClients?: "yes" | "no" | "optional"
  }
}

export interface RedisServer {
  readonly host: "127.0.0.1"
  readonly port: number
  readonly dir: string
  readonly socketPath: string | undefined
  readonly url: string
  readonly process: ServerProcess
}

/**
 * The flags of a private redis-server: loopback only, nothing persisted (its files, if any, in
 * `dir`), logging to stdout where the readiness line is read. Shared with bench/.
 */
export const privateServerFlags = (dir: string): ReadonlyArray<string> => [
  "--bind",
  "127.0.0.1",
  "--save",
  "",
  "--appendonly",
  "no",
  "--dir",
  dir,
  "--daemonize",
  "no",
  "--logfile",
  "",
  "--protected-mode",
  "no"
]

/** A private redis-server on a free loopback port, persisting nothing; killed with the scope. */
export const redisServer = (options: RedisServerOptions = {}): Effect.Effect<RedisServer, HarnessError, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* tempDir("redis-")
    const port = yield* freePort
    const socketPath = options.unixSocket ? Path.join(dir, "redis.sock") : undefined
    const args = [
      ...privateServerFlags(dir),
      ...(options.tls
        ? [
            "--port",
            "0",
            "--tls-port",
            String(port),
            "--tls-cert-file",
            options.tls.cert,
            "--tls-key-file",
            options.tls.key,
            "--tls-ca-cert-file",
            options.tls.ca,
            "--tls-auth-clients",
            options.tls.authClients ?? "no"
          ]
        : ["--port", String(port)]),
      ...(socketPath ? ["--unixsocket", socketPath, "--unixsocketperm", "700"] : []),
      ...(options.args ?? [])
    ]
    const process = yield* spawn({
      command: "redis-server",
      args,
      readyLine: "Ready to accept connections",
      name: `redis-server:${port}`
    })
    const scheme = options.tls ? "rediss" : "redis"
    return { host: "127.0.0.1", port, dir, socketPath, url: `${scheme}://127.0.0.1:${port}`, process } as const
  })

export interface TlsFiles {
  readonly dir: string
  readonly ca: string
  readonly caKey: string
  readonly serverCert: string
  readonly serverKey: string
  readonly clientCert: string
  readonly clientKey: string
  /** A CA that signed nothing here: verification against it must fail. */
  readonly otherCa: string
}

const run = (cmd: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.async<void, HarnessError>((resume) => {
    ChildProcess.execFile(cmd, [...args], { cwd }, (error, _stdout, stderr) => {
      resume(
        error
          ? Effect.fail(new HarnessError({ message: `${cmd} ${args.join(" ")}: ${stderr}`, cause: error }))
          : Effect.void
      )
    })
  })

/** CA, server (CN=localhost, SAN 127.0.0.1/localhost) and client certificates made by openssl now. */
export const makeTlsFiles: Effect.Effect<TlsFiles, HarnessError, Scope.Scope> = Effect.gen(function* () {
  const dir = yield* tempDir("tls-")
  const ossl = (...args: Array<string>) => run("openssl", args, dir)
  const ext = Path.join(dir, "san.ext")
  Fs.writeFileSync(ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
  // Two self-signed CAs: the one that signs the certificates below, and one that signs nothing.
  for (const [name, subject] of [
    ["ca", "/CN=effect-celery test CA"],
    ["other", "/CN=other CA"]
  ] as const) {
    yield* ossl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      subject,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`
    )
  }
  for (const name of ["server", "client"]) {
    yield* ossl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=${name === "server" ? "localhost" : "client"}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`
    )
    yield* ossl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-out",
      `${name}.crt`,
      "-extfile",
      ext
    )
  }
  const p = (f: string) => Path.join(dir, f)
  return {
    dir,
    ca: p("ca.crt"),
    caKey: p("ca.key"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    clientCert: p("client.crt"),
    clientKey: p("client.key"),
    otherCa: p("other.crt")
  }
})
