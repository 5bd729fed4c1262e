// Renders openapi.json as a page: one section per operation with its parameters, body and
// answers. Plain DOM building (textContent), so nothing in the document can inject markup.
"use strict";
(function () {
  const main = document.getElementById("docs");
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function resolve(doc, schema) {
    if (schema && schema.$ref) {
      return doc.components.schemas[schema.$ref.split("/").pop()] || schema;
    }
    return schema;
  }
  function schemaTable(doc, schema) {
    schema = resolve(doc, schema);
    const table = el("table");
    const head = el("tr");
    ["field", "type", "required", "description"].forEach((h) => head.appendChild(el("th", h)));
    table.appendChild(head);
    const required = new Set(schema.required || []);
    Object.entries(schema.properties || {}).forEach(([name, prop]) => {
      const row = el("tr");
      row.appendChild(el("td")).appendChild(el("code", name));
      row.appendChild(el("td", typeName(prop)));
      row.appendChild(el("td", required.has(name) ? "yes" : ""));
      row.appendChild(el("td", prop.description || "", "muted"));
      table.appendChild(row);
    });
    return table;
  }
  function typeName(prop) {
    if (prop.$ref) return prop.$ref.split("/").pop();
    if (prop.enum) return prop.enum.join(" | ");
    if (prop.anyOf) return prop.anyOf.map(typeName).join(" | ");
    if (prop.type === "array" && prop.items) return typeName(prop.items) + "[]";
    let name = prop.type || "any";
    if (prop.format) name += " (" + prop.format + ")";
    if (prop.minimum !== undefined || prop.maximum !== undefined) {
      name += " " + (prop.minimum ?? "") + "–" + (prop.maximum ?? "");
    }
    if (prop.maxLength !== undefined) name += " ≤" + prop.maxLength + " chars";
    return name;
  }
  function render(doc) {
    main.textContent = "";
    main.appendChild(el("p", doc.info.description));
    const base = (doc.servers && doc.servers[0] && doc.servers[0].url) || "";
    Object.entries(doc.paths).forEach(([path, ops]) => {
      Object.entries(ops).forEach(([method, op]) => {
        const section = el("section", null, "op");
        section.id = op.operationId;
        const title = el("h3");
        title.appendChild(el("span", method.toUpperCase(), "method " + method));
        title.appendChild(el("code", base + path));
        section.appendChild(title);
        section.appendChild(el("p", op.summary));
        if (op.description) section.appendChild(el("p", op.description, "muted"));
        if (op.parameters && op.parameters.length) {
          section.appendChild(el("h4", "Parameters"));
          const table = el("table");
          op.parameters.forEach((p) => {
            const row = el("tr");
            row.appendChild(el("td")).appendChild(el("code", p.name));
            row.appendChild(el("td", p.in));
            row.appendChild(el("td", typeName(p.schema || {})));
            row.appendChild(el("td", p.description || "", "muted"));
            table.appendChild(row);
          });
          section.appendChild(table);
        }
        if (op.requestBody) {
          section.appendChild(el("h4", "Body (JSON)"));
          section.appendChild(
            schemaTable(doc, op.requestBody.content["application/json"].schema)
          );
        }
        section.appendChild(el("h4", "Answers"));
        const answers = el("table");
        Object.entries(op.responses).forEach(([code, response]) => {
          const row = el("tr");
          row.appendChild(el("td", code));
          row.appendChild(el("td", response.description));
          answers.appendChild(row);
        });
        section.appendChild(answers);
        main.appendChild(section);
      });
    });
  }
  fetch("openapi.json", { credentials: "same-origin" })
    .then((r) => {
      if (!r.ok) throw new Error("openapi.json answered " + r.status);
      return r.json();
    })
    .then(render)
    .catch((err) => {
      main.textContent = "";
      main.appendChild(el("p", "Could not load the API description: " + err.message));
    });
})();
