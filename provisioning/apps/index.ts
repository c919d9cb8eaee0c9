// provisioning/apps/: app identities for MQTT (docs/device-protocol.md "Apps").
export { APP_CLASSES, createAppService, type AppPolicy, type AppService, type AppView } from './app-service.ts'
