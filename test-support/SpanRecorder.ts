/** A tracer for tests: Effect's own tracer, keeping every span it makes so tests can read them. */
import { Effect, Layer, Tracer } from "effect"

export const recording = () => {
  const spans: Array<Tracer.Span> = []
  const layer = Layer.unwrapEffect(
    Effect.map(Effect.tracer, (native) =>
      Layer.setTracer(Tracer.make({
        span: (...args) => {
          const span = native.span(...args)
          spans.push(span)
          return span
        },
        context: (f) => f()
      })))
  )
  return { spans, layer, named: (name: string) => spans.filter((s) => s.name === name) }
}
