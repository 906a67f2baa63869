/**
 * The built CLI, spawned as a user runs it, against a real redis-server where a real Python Celery
 * worker writes the results: output, exit codes, `--json` shapes, the timeout code, the live view
 * (non-TTY lines while a Python task reports PROGRESS; the table under a pseudo-terminal),
 * one-line errors with the password masked, and Ctrl-C releasing every subscription.
 */
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Meta from "@effect-celery/core/Meta"
import * as CliEnv from "./CliEnv.js"

const { awaitSubscribed, jsonLines, lines, numsub, redis, runCli, send, settle, spawnCli, uid } = CliEnv

const ESC = "\x1b"

const task = (id: string) => `celery-task-meta-${id}`

const assertOneLineError = (stderr: string, ...parts: ReadonlyArray<string>) => {
  const ls = lines(stderr)
  assert.strictEqual(ls.length, 1, `one line on stderr, got:\n${stderr}`)
  for (const p of parts) assert.include(ls[0], p)
}

layer(CliEnv.layer, { excludeTestServices: true, timeout: "120 seconds" })("effect-celery CLI", (it) => {
  it.effect("the built binary: --help (with the exit codes), --completions, and a usage error exit 2", () =>
    Effect.gen(function* () {
      // Every command's help is checked in process (Units.test.ts); here the executable itself.
      const [root, leaf, completions, usage] = yield* Effect.all(
        [
          runCli(["--help"]),
          runCli(["result", "watch", "--help"]),
          runCli(["--completions", "bash"]),
          runCli(["result", "get"])
        ],
        { concurrency: 2 }
      )
      for (const r of [root, leaf]) {
        assert.strictEqual(r.code, 0, r.stderr)
        assert.include(r.stdout, "USAGE")
        assert.include(r.stdout, "EXIT CODES")
      }
      assert.include(leaf.stdout, "--group")
      assert.strictEqual(completions.code, 0)
      assert.include(completions.stdout, "_effect-celery_bash_completions")
      assert.strictEqual(usage.code, 2, "a missing argument is a usage error")
      assert.include(usage.stderr, "<task-id>")
    })
  )

  it.effect("a bad URL is one line naming the server as Celery's as_uri() does, password masked, exit 2", () =>
    Effect.gen(function* () {
      const secret = "s3cr3t-pass"
      const unknown = yield* runCli(["result", "get", "x", "--url", `foo://:${secret}@h/0`])
      assert.strictEqual(unknown.code, 2)
      assertOneLineError(unknown.stderr, "ImproperlyConfigured", "foo://:**@h/0", "No module named 'foo'")
      const noCertReqs = yield* runCli(["result", "get", "x", "--url", `rediss://:${secret}@127.0.0.1:1/0`])
      assert.strictEqual(noCertReqs.code, 2)
      assertOneLineError(noCertReqs.stderr, "ImproperlyConfigured", "rediss://:**@127.0.0.1:1/0", "ssl_cert_reqs")
      const noUrl = yield* runCli(["result", "get", "x"], { env: { CELERY_RESULT_BACKEND: undefined } })
      assert.strictEqual(noUrl.code, 2)
      assertOneLineError(noUrl.stderr, "--url", "CELERY_RESULT_BACKEND")
      for (const r of [unknown, noCertReqs, noUrl]) {
        assert.notInclude(r.stdout + r.stderr, secret)
        assert.strictEqual(r.stdout, "")
      }
    })
  )

  it.effect("an unreachable server or a refused password: one line, exit 5, password never echoed", () =>
    Effect.gen(function* () {
      const env = yield* CliEnv.CliEnv
      const secret = "s3cr3t-pass"
      // Port 1 on loopback: nothing listens there.
      const refused = yield* runCli(["result", "get", "x"], {
        env: { CELERY_RESULT_BACKEND: `redis://:${secret}@127.0.0.1:1/0` }
      })
      assert.strictEqual(refused.code, 5)
      assertOneLineError(refused.stderr, "ConnectionError(Connect)", "redis://:**@127.0.0.1:1/0")
      // The server has no password: AUTH is refused.
      const auth = yield* runCli(["doctor", "--url", `redis://user:${secret}@127.0.0.1:${env.server.port}/0`])
      assert.strictEqual(auth.code, 5)
      assertOneLineError(auth.stderr, "ConnectionError", `redis://user:**@127.0.0.1:${env.server.port}/0`)
      assert.include(auth.stdout, "password:    set (not shown)")
      for (const r of [refused, auth]) assert.notInclude(r.stdout + r.stderr, secret)
    })
  )

  it.effect("result get: SUCCESS exit 0, FAILURE exit 1 with the exception and traceback, PENDING exit 3; --json", () =>
    Effect.gen(function* () {
      const ok = uid("add")
      const bad = uid("fail")
      const missing = uid("missing")
      yield* send("interop.add", [2, 3], ok)
      yield* send("interop.fail", ["declined", 42], bad)
      yield* settle(ok)
      yield* settle(bad)

      const success = yield* runCli(["result", "get", ok])
      assert.strictEqual(success.code, 0, success.stderr)
      assert.match(success.stdout, new RegExp(`^${ok}  SUCCESS\n  result: +5\n  date_done: +\\d{4}-\\d\\d-\\d\\dT`))
      assert.match(success.stdout, /ttl: +(23h 59m|1d)/)

      const failure = yield* runCli(["result", "get", bad, "--traceback"])
      assert.strictEqual(failure.code, 1)
      assert.include(failure.stdout, `${bad}  FAILURE`)
      assert.include(failure.stdout, "PaymentError('declined', 42)")
      assert.include(failure.stdout, "Traceback (most recent call last)")

      const pending = yield* runCli(["result", "get", missing])
      assert.strictEqual(pending.code, 3)
      assert.include(pending.stdout, `${missing}  PENDING`)

      const all = yield* runCli(["result", "get", "--json", ok, bad, missing])
      assert.strictEqual(all.code, 1, "FAILURE outranks PENDING")
      const [a, b, c] = jsonLines(all.stdout)
      assert.deepStrictEqual(Object.keys(a!), [
        "task_id",
        "state",
        "ready",
        "result",
        "date_done",
        "traceback",
        "stored",
        "ttl"
      ])
      assert.strictEqual(a!["task_id"], ok)
      assert.strictEqual(a!["state"], "SUCCESS")
      assert.strictEqual(a!["ready"], true)
      assert.strictEqual(a!["result"], 5)
      assert.isTrue((a!["ttl"] as number) > 86000 && (a!["ttl"] as number) <= 86400)
      assert.deepStrictEqual(b!["result"], {
        exc_type: "PaymentError",
        exc_message: ["declined", 42],
        exc_module: "interop_app"
      })
      assert.include(b!["traceback"] as string, "PaymentError")
      assert.deepStrictEqual(c, {
        task_id: missing,
        state: "PENDING",
        ready: false,
        result: null,
        date_done: null,
        traceback: null,
        stored: false,
        ttl: null
      })
    })
  )

  it.effect("result wait: prints the result once the worker stores it (subscribed first), exit 0", () =>
    Effect.gen(function* () {
      const id = uid("wait")
      const run = yield* spawnCli(["result", "wait", id, "--timeout", "30s"])
      yield* awaitSubscribed(task(id))
      yield* send("interop.add", [20, 22], id)
      const done = yield* run.exit()
      assert.strictEqual(done.code, 0, done.stderr)
      assert.deepStrictEqual(lines(done.stdout), [`${id}  SUCCESS  42`])
      assert.strictEqual(yield* numsub(task(id)), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("result wait --timeout: exit 4 after the timeout, naming what is not ready", () =>
    Effect.gen(function* () {
      const ok = uid("ready")
      const never = uid("never")
      yield* send("interop.add", [1, 1], ok)
      yield* settle(ok)
      const r = yield* runCli(["result", "wait", "--json", ok, never, "--timeout", "1s"])
      assert.strictEqual(r.code, 4)
      const [first] = jsonLines(r.stdout)
      assert.strictEqual(first!["task_id"], ok)
      assert.strictEqual(first!["state"], "SUCCESS")
      assertOneLineError(r.stderr, "TimeoutError", never)
      assert.isTrue(r.millis >= 1000, `took ${r.millis} ms`)
    })
  )

  it.effect("result watch (not a TTY): one line per change while a Python task reports PROGRESS", () =>
    Effect.gen(function* () {
      const id = uid("steps")
      const run = yield* spawnCli(["result", "watch", id])
      yield* awaitSubscribed(task(id))
      yield* send("cli.steps", [3, 0.05], id)
      const done = yield* run.exit()
      assert.strictEqual(done.code, 0, done.stderr)
      const out = lines(done.stdout)
      assert.notInclude(done.stdout, "\x1b[", "no escape sequences when stdout is not a terminal")
      const re = /^\d\d:\d\d:\d\d\.\d{3} {2}(\S+) {2}(\S+)(?: {2}(.*))?$/
      const parsed = out.map((l) => {
        const m = re.exec(l)
        assert.isNotNull(m, l)
        assert.strictEqual(m?.[1], id)
        return [m?.[2], m?.[3] ?? ""] as const
      })
      assert.deepStrictEqual(
        parsed.map(([s]) => s),
        ["STARTED", "PROGRESS", "PROGRESS", "PROGRESS", "SUCCESS"]
      )
      assert.deepStrictEqual(
        parsed.slice(1, 4).map(([, w]) => w),
        [1, 2, 3].map((n) => `{'current': ${n}, 'total': 3}`)
      )
      assert.strictEqual(parsed[4]![1], "{'done': 3}")
      assert.strictEqual(yield* numsub(task(id)), 0, "the subscription is released at the end")
    }).pipe(Effect.scoped)
  )

  it.effect("result watch --json: one JSON object per change; RETRY carries the exception", () =>
    Effect.gen(function* () {
      const id = uid("flaky")
      const run = yield* spawnCli(["result", "watch", "--json", id])
      yield* awaitSubscribed(task(id))
      yield* send("interop.flaky", ["v"], id)
      const done = yield* run.exit()
      assert.strictEqual(done.code, 0, done.stderr)
      const items = jsonLines(done.stdout)
      assert.deepStrictEqual(
        items.map((i) => i["state"]),
        ["STARTED", "RETRY", "STARTED", "SUCCESS"]
      )
      assert.deepStrictEqual(items[1]!["result"], {
        exc_type: "PaymentError",
        exc_message: ["transient", 0],
        exc_module: "interop_app"
      })
      assert.deepStrictEqual(items[3]!["result"], { value: "v", retries: 1 })
    }).pipe(Effect.scoped)
  )

  it.effect("Ctrl-C (SIGINT) during watch: exit 130 and no channel left subscribed", () =>
    Effect.gen(function* () {
      const ids = [uid("sigint"), uid("sigint")]
      const run = yield* spawnCli(["result", "watch", ...ids])
      for (const id of ids) yield* awaitSubscribed(task(id))
      yield* run.kill("SIGINT")
      const done = yield* run.exit(15_000)
      assert.strictEqual(done.code, 130, done.stderr)
      assert.strictEqual(done.stderr, "")
      for (const id of ids) assert.strictEqual(yield* numsub(task(id)), 0)
    }).pipe(Effect.scoped)
  )

  it.effect("watch --group under a pseudo-terminal: a live table redrawn in place until every member is done", () =>
    Effect.gen(function* () {
      const gid = uid("group")
      const members = [uid("m"), uid("m"), uid("m")]
      // The group is saved first (as Celery's GroupResult.save writes it; not through Python, whose
      // GroupResult subscribes to its members) and its members sent once the CLI follows them all.
      const saved = Meta.encodeGroupMeta({
        groupId: gid,
        results: members.map((id) => ({ id, parent: null, children: null }))
      })
      yield* redis((r) => r.set(`celery-taskset-meta-${gid}`, saved))
      // `script` gives the CLI a terminal as stdout; its own output is the terminal's.
      const command = [process.execPath, CliEnv.BIN, "result", "watch", "--group", gid].join(" ")
      const run = yield* spawnCli(["-qfec", command, "/dev/null"], { command: "script" })
      for (const m of members) yield* awaitSubscribed(task(m))
      for (const m of members) yield* send("cli.steps", [2, 0.3], m)
      const done = yield* run.exit(60_000)
      assert.strictEqual(done.code, 0, done.stdout + done.stderr)
      const redraw = new RegExp(`${ESC}\\[\\d+F${ESC}\\[J`)
      const redraws = done.stdout.split(redraw).length - 1
      assert.isAtLeast(redraws, 2, `redrawn in place:\n${JSON.stringify(done.stdout.slice(-2000))}`)
      const last = done.stdout.split(redraw).at(-1) ?? ""
      assert.include(last, "3/3 ready")
      assert.include(last, "SUCCESS 3")
      for (const m of members) assert.match(last, new RegExp(`${m}\\s+SUCCESS\\s+\\{'done': 2\\}`))
      assert.include(done.stdout, "\x1b[?25h", "the cursor is shown again")
    }).pipe(Effect.scoped)
  )

  it.effect("forget and exists: stored → forget → not stored (exit 3), reads as PENDING", () =>
    Effect.gen(function* () {
      const id = uid("forget")
      yield* send("interop.add", [1, 2], id)
      yield* settle(id)
      const before = yield* runCli(["result", "exists", id])
      assert.strictEqual(before.code, 0)
      assert.strictEqual(before.stdout.trim(), `${id}: stored`)
      const forgot = yield* runCli(["result", "forget", id])
      assert.strictEqual(forgot.code, 0, forgot.stderr)
      assert.strictEqual(forgot.stdout.trim(), `forgot ${id}`)
      const after = yield* runCli(["result", "exists", "--json", id])
      assert.strictEqual(after.code, 3)
      assert.deepStrictEqual(jsonLines(after.stdout), [{ task_id: id, exists: false }])
      assert.isNull(yield* redis((r) => r.get(task(id))))
    })
  )

  it.effect("an empty task id is a bad argument: Celery's message, exit 2, nothing read", () =>
    Effect.gen(function* () {
      for (const args of [
        ["result", "get", ""],
        ["result", "exists", ""],
        ["result", "forget", ""]
      ]) {
        const run = yield* runCli(args)
        assert.strictEqual(run.code, 2, `${args.join(" ")}: ${run.stderr}`)
        // Celery's message, its whitespace collapsed as every error line is.
        assert.include(run.stderr, "InvalidIdError: task_id must not be empty. Got instead.")
        assert.strictEqual(run.stdout, "")
      }
    })
  )

  it.effect("result inspect --json: the raw bytes as stored, the decoded meta, key, channel, TTL", () =>
    Effect.gen(function* () {
      const id = uid("inspect")
      yield* send("interop.rich", [], id)
      yield* settle(id)
      const raw = yield* redis((r) => r.get(task(id)))
      const r = yield* runCli(["result", "inspect", "--json", id])
      assert.strictEqual(r.code, 0, r.stderr)
      const [o] = jsonLines(r.stdout)
      assert.strictEqual(o!["key"], task(id))
      assert.strictEqual(o!["channel"], task(id))
      assert.strictEqual(o!["type"], "string")
      assert.strictEqual(o!["raw"], raw)
      assert.strictEqual(o!["bytes"], Buffer.byteLength(raw!, "utf8"))
      assert.isTrue((o!["ttl"] as number) > 0)
      assert.strictEqual(o!["subscribers"], 0)
      assert.strictEqual((o!["meta"] as Record<string, unknown>)["state"], "SUCCESS")
      const human = yield* runCli(["result", "inspect", id])
      assert.include(human.stdout, `raw:\n  ${raw}`)
      assert.include(human.stdout, "'big': 1180591620717411303424")
    })
  )

  it.effect(
    "a stored value that is not a Celery meta: get is one DecodeError line, watch ends on it, inspect shows the bytes; exit 5",
    () =>
      Effect.gen(function* () {
        const id = uid("garbage")
        yield* redis((r) => r.set(task(id), "not json"))
        const get = yield* runCli(["result", "get", id])
        assert.strictEqual(get.code, 5)
        assertOneLineError(get.stderr, "DecodeError", id, "Invalid JSON")
        const watch = yield* runCli(["result", "watch", id])
        assert.strictEqual(watch.code, 5, watch.stderr)
        assert.match(watch.stdout, new RegExp(`${id}  UNDECODABLE  Invalid JSON`))
        const inspect = yield* runCli(["result", "inspect", id])
        assert.strictEqual(inspect.code, 5)
        assert.include(inspect.stdout, "raw:\n  not json")
        assert.include(inspect.stdout, "decoded: UNDECODABLE: Invalid JSON")
      })
  )

  it.effect("group show: the members and their states; an unknown group exits 3", () =>
    Effect.gen(function* () {
      const env = yield* CliEnv.CliEnv
      const gid = uid("g")
      const [a, b] = [uid("ga"), uid("gb")]
      yield* env.python.call("group", {
        gid,
        members: [
          { task: "interop.add", args: [1, 2], task_id: a },
          { task: "interop.fail", args: ["no"], task_id: b }
        ]
      })
      yield* settle(a)
      yield* settle(b)
      const r = yield* runCli(["group", "show", gid])
      assert.strictEqual(r.code, 1, r.stderr)
      assert.deepStrictEqual(lines(r.stdout), [
        `group ${gid}: 2 members  SUCCESS 1  FAILURE 1`,
        `  ${a}  SUCCESS  3`,
        `  ${b}  FAILURE  PaymentError('no')`
      ])
      const j = yield* runCli(["group", "show", "--json", gid])
      const [o] = jsonLines(j.stdout)
      assert.strictEqual(o!["size"], 2)
      assert.deepStrictEqual(o!["counts"], { SUCCESS: 1, FAILURE: 1 })
      assert.deepStrictEqual(
        (o!["members"] as Array<Record<string, unknown>>).map((m) => m["task_id"]),
        [a, b]
      )
      const unknown = yield* runCli(["group", "show", uid("nogroup")])
      assert.strictEqual(unknown.code, 3)
      assertOneLineError(unknown.stderr, "no group")
    })
  )

  it.effect("chord show: a completed Celery chord has no keys left (exit 0); in progress exit 3; stuck exit 1", () =>
    Effect.gen(function* () {
      const env = yield* CliEnv.CliEnv
      const gid = uid("chord")
      const body = uid("body")
      const parts = [uid("p"), uid("p")]
      yield* env.python.call("chord", {
        gid,
        members: parts.map((task_id, i) => ({ task: "interop.add", args: [i, 1], task_id })),
        body: { task: "interop.tsum", args: [], task_id: body }
      })
      yield* settle(body)
      const complete = yield* runCli(["chord", "show", gid])
      assert.strictEqual(complete.code, 0, complete.stderr)
      assert.include(complete.stdout, "no chord keys")

      // In progress, then stuck, as the keys record it (written as Celery's redis backend does).
      const g2 = uid("chord")
      const [p1, p2, p3] = [uid("p"), uid("p"), uid("p")]
      yield* redis((r) => r.set(`celery-taskset-meta-${g2}.s`, "3"))
      yield* redis((r) =>
        r.zAdd(`celery-taskset-meta-${g2}.j`, { score: 0, value: Meta.encodeChordMember(p1, "SUCCESS", 1) })
      )
      yield* env.python.call("save_group", { gid: g2, children: [p1, p2, p3] })
      const progress = yield* runCli(["chord", "show", g2])
      assert.strictEqual(progress.code, 3, progress.stderr)
      assert.include(progress.stdout, `chord ${g2}: in progress  1/3 parts done`)
      assert.include(progress.stdout, `missing  ${p2}`)
      assert.include(progress.stdout, `missing  ${p3}`)
      yield* redis((r) =>
        r.zAdd(`celery-taskset-meta-${g2}.j`, [
          { score: 1, value: Meta.encodeChordMember(p2, "SUCCESS", 2) },
          {
            score: 2,
            value: Meta.encodeChordMember(p3, "FAILURE", {
              exc_type: "ValueError",
              exc_message: ["x"],
              exc_module: "builtins"
            })
          }
        ])
      )
      const stuck = yield* runCli(["chord", "show", "--json", g2])
      assert.strictEqual(stuck.code, 1)
      const [o] = jsonLines(stuck.stdout)
      assert.strictEqual(o!["status"], "stuck")
      assert.strictEqual(o!["done"], 3)
      assert.strictEqual(o!["expected"], 3)
      assert.deepStrictEqual(o!["missing"], [])
      assert.deepStrictEqual(
        (o!["parts"] as Array<Record<string, unknown>>).map((p) => p["state"]),
        ["SUCCESS", "SUCCESS", "FAILURE"]
      )
    })
  )

  it.effect("results ls / stats / expire over a key prefix: SCAN + MGET (never KEYS), filters, TTLs set", () =>
    Effect.gen(function* () {
      const prefix = `${uid("store")}:`
      const key = (id: string) => `${prefix}celery-task-meta-${id}`
      const meta = (id: string, status: string, result: string, date: string | null) =>
        `{"status": "${status}", "result": ${result}, "traceback": null, "children": [], "date_done": ${date === null ? "null" : `"${date}"`}, "task_id": "${id}"}`
      yield* redis((r) =>
        Promise.all([
          r.set(key("old"), meta("old", "SUCCESS", "1", "2020-01-01T00:00:00.000000"), { EX: 3600 }),
          r.set(
            key("bad"),
            meta(
              "bad",
              "FAILURE",
              '{"exc_type": "ValueError", "exc_message": ["x"], "exc_module": "builtins"}',
              new Date().toISOString().slice(0, 26)
            )
          ),
          r.set(key("run"), meta("run", "PROGRESS", '{"current": 1}', null), { EX: 3600 }),
          r.set(`${prefix}celery-taskset-meta-grp`, '{"result": [], "group_id": "grp"}')
        ])
      )
      const base = ["--keyprefix", prefix]
      const ls = yield* runCli(["results", "ls", ...base])
      assert.strictEqual(ls.code, 0, ls.stderr)
      assert.deepStrictEqual(
        lines(ls.stdout)
          .map((l) => l.split("  ").slice(0, 2).join(" "))
          .sort(),
        ["bad FAILURE", "old SUCCESS", "run PROGRESS"]
      )
      const failed = yield* runCli(["results", "ls", ...base, "--state", "FAILURE", "--json"])
      assert.deepStrictEqual(
        jsonLines(failed.stdout).map((o) => [o["task_id"], o["state"], o["ttl"]]),
        [["bad", "FAILURE", null]]
      )
      const old = yield* runCli(["results", "ls", ...base, "--older-than", "1d"])
      assert.deepStrictEqual(
        lines(old.stdout).map((l) => l.split("  ")[0]),
        ["old"]
      )
      const limited = yield* runCli(["results", "ls", ...base, "--limit", "1"])
      assert.strictEqual(lines(limited.stdout).length, 1)

      const stats = yield* runCli(["results", "stats", ...base, "--json"])
      assert.strictEqual(stats.code, 0, stats.stderr)
      const [s] = jsonLines(stats.stdout)
      assert.strictEqual(s!["tasks"], 3)
      assert.strictEqual(s!["group_keys"], 1)
      assert.deepStrictEqual(s!["states"], { SUCCESS: 1, FAILURE: 1, PROGRESS: 1 })
      assert.deepStrictEqual(s!["age"], { "< 1m": 1, ">= 30d": 1, "no date_done": 1 })
      assert.strictEqual(s!["without_ttl"], 1)
      assert.deepStrictEqual(s!["without_ttl_sample"], ["bad"])
      assert.isTrue((s!["memory"] as number) > 0)

      const dry = yield* runCli(["results", "expire", ...base, "--ttl", "1h", "--dry-run"])
      assert.strictEqual(dry.code, 0, dry.stderr)
      assert.deepStrictEqual(
        lines(dry.stdout).slice(0, -1).sort(),
        [key("bad"), `${prefix}celery-taskset-meta-grp`].sort()
      )
      assert.include(dry.stdout, "2 of 4 keys have no TTL")
      assert.strictEqual(yield* redis((r) => r.ttl(key("bad"))), -1, "a dry run changes nothing")
      const set = yield* runCli(["results", "expire", ...base, "--ttl", "1h", "--json"])
      assert.deepStrictEqual(jsonLines(set.stdout), [
        { scanned: 4, without_ttl: 2, expired: 2, ttl: 3600, dry_run: false }
      ])
      const ttl = yield* redis((r) => r.ttl(key("bad")))
      assert.isTrue(ttl > 3500 && ttl <= 3600, `ttl ${ttl}`)

      const commandstats = yield* redis((r) => r.info("commandstats"))
      assert.include(commandstats, "cmdstat_scan:")
      assert.notInclude(commandstats, "cmdstat_keys:")
    })
  )

  it.effect("results ls | head: once its reader is gone it stops quietly (exit 141, nothing on stderr)", () =>
    Effect.gen(function* () {
      const prefix = `${uid("pipe")}:`
      const entries: Array<[string, string]> = []
      for (let i = 0; i < 5000; i++) {
        const id = `t${i}`
        entries.push([
          `${prefix}celery-task-meta-${id}`,
          `{"status": "SUCCESS", "result": ${i}, "traceback": null, "children": [], "date_done": "2026-12-05T12:00:00.000000", "task_id": "${id}"}`
        ])
      }
      yield* redis((r) => r.mSet(entries))
      const run = yield* spawnCli(["results", "ls", "--keyprefix", prefix])
      yield* run.waitForStdout("SUCCESS")
      yield* run.closeStdout
      const done = yield* run.exit()
      assert.strictEqual(done.code, 141, done.stderr)
      assert.strictEqual(done.stderr, "")
    }).pipe(Effect.scoped)
  )

  it.effect("doctor: the resolved connection, the server, and leftover subscriptions on ready results", () =>
    Effect.gen(function* () {
      const env = yield* CliEnv.CliEnv
      const id = uid("leftover")
      yield* send("interop.add", [4, 4], id)
      yield* settle(id)
      // A client that never unsubscribed from a ready result's channel.
      const sub = env.raw.duplicate()
      sub.on("error", () => {})
      yield* Effect.acquireRelease(
        Effect.promise(() => sub.connect().then(() => sub.subscribe(task(id), () => {}))),
        () => Effect.promise(() => sub.quit().catch(() => undefined))
      )
      const r = yield* runCli(["doctor"])
      assert.strictEqual(r.code, 0, r.stderr)
      assert.include(r.stdout, `url:         redis://127.0.0.1:${env.server.port}/0`)
      assert.match(r.stdout, /server: +redis 7\.\d+\.\d+, mode standalone, role master, cluster disabled/)
      assert.match(r.stdout, new RegExp(`  ${task(id)}  \\d+ subscribers?  SUCCESS  leftover`))
      const j = yield* runCli(["doctor", "--json"])
      const [o] = jsonLines(j.stdout)
      assert.strictEqual(o!["connected"], true)
      assert.strictEqual(o!["password_set"], false)
      const subs = o!["subscriptions"] as Array<Record<string, unknown>>
      const mine = subs.find((s) => s["channel"] === task(id))
      assert.isAtLeast(mine!["subscribers"] as number, 1)
      assert.deepStrictEqual(
        { ...mine, subscribers: 1 },
        { channel: task(id), subscribers: 1, state: "SUCCESS", leftover: true }
      )
    }).pipe(Effect.scoped)
  )
})
