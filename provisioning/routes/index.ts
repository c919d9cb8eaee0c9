// provisioning/routes/: telemetry routes in the registry (docs/architecture.md, "Telemetry routes").
export { createRouteService, isSealedSecret, type RoutePolicy, type RouteService, type RouteTester } from './route-service.ts'
