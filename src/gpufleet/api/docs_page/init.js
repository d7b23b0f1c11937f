// Swagger UI for this server's OpenAPI document. Everything it loads comes from this origin:
// the assets ship with gpufleet, and the online validator badge is switched off.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
